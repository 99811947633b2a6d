/**
 * What a test run must not leave behind (issue 21): git, qemu or runner processes, and the
 * engine's temporary folders. A run is told apart from other runs on the same machine by a
 * marker in the environment its processes inherit, and by its own TMPDIR, which every
 * folder and machine workspace of the run lives under.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const RUN_MARKER_ENV = 'SOLSTICE_TEST_RUN';

/**
 * Marks this jest run (a global setup calls it): everything it starts carries the marker, and
 * every temporary folder of the run is under its own TMPDIR, so the teardown
 * (global-teardown.ts) can tell what this run left behind.
 */
export function markRun(): { id: string; tmp: string } {
  // One jest run of both projects calls each project's setup: they share one mark.
  const marked = (globalThis as { __solsticeRun?: { id: string; tmp: string } }).__solsticeRun;
  if (marked) return marked;
  const id = randomUUID();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-test-run-'));
  // mkdtemp makes it 0700; as /tmp itself, it must be enterable by the embedded PostgreSQL's
  // own user (tests keep its data below it) and by the guest-image and machine processes.
  fs.chmodSync(tmp, 0o755);
  process.env[RUN_MARKER_ENV] = id;
  process.env.TMPDIR = tmp;
  const run = { id, tmp };
  (globalThis as { __solsticeRun?: typeof run }).__solsticeRun = run;
  return run;
}

const WATCHED = /(^|\/)(git|git-remote-\S+|qemu-system-\S+|qemu-img|runner\.js)(\s|$)|\bremote-(fd|ext)\b/;

export interface Leftover {
  pid: number;
  cmdline: string;
}

/** Processes of this run (marker in their environment, or a cwd under its TMPDIR) that are git, qemu or the runner. */
export function leakedProcesses(runId: string, runTmp: string): Leftover[] {
  const needle = Buffer.from(`${RUN_MARKER_ENV}=${runId}\0`);
  const out: Leftover[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${e}/cmdline`).toString().split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (!WATCHED.test(cmdline)) continue;
    let ours = false;
    try {
      ours = fs.readFileSync(`/proc/${e}/environ`).includes(needle);
    } catch {
      // Not readable: not ours (another user's).
    }
    if (!ours) {
      try {
        ours = fs.readlinkSync(`/proc/${e}/cwd`).startsWith(runTmp + path.sep);
      } catch {
        // Gone, or not ours.
      }
    }
    if (ours) out.push({ pid: Number(e), cmdline: cmdline.slice(0, 200) });
  }
  return out;
}

/** Folders the engine itself makes in TMPDIR and must always remove (planning's fetches). */
export function engineTempLeftovers(runTmp: string): string[] {
  if (!fs.existsSync(runTmp)) return [];
  return fs.readdirSync(runTmp).filter((n) => n.startsWith('solstice-plan-'));
}

/**
 * The check the global teardown makes at the end of a run: throws naming every process and
 * planning folder the run left, after killing those processes and removing the run's TMPDIR,
 * so one failed run does not poison the next.
 */
export async function failOnLeaks(run: { id: string; tmp: string }): Promise<void> {
  // Give processes killed by the last test's cleanup a moment to be reaped.
  let procs = leakedProcesses(run.id, run.tmp);
  for (let i = 0; i < 50 && procs.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    procs = leakedProcesses(run.id, run.tmp);
  }
  const temps = engineTempLeftovers(run.tmp);
  // What tests made and did not remove goes with the run's TMPDIR.
  fs.rmSync(run.tmp, { recursive: true, force: true });
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  const problems = [
    ...procs.map((p) => `process ${p.pid} still alive: ${p.cmdline}`),
    ...temps.map((t) => `temporary folder left behind: ${t}`),
  ];
  if (problems.length > 0)
    throw new Error(
      `the test run leaked (issue 21: nothing survives the suite):\n  ${problems.join('\n  ')}`,
    );
}
