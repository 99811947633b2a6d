import fs from 'node:fs';
import type { DevServer } from '../../devstack/temporal-dev-server';
import { engineTempLeftovers, leakedProcesses } from './leak-check';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __solsticeTemporal?: DevServer }).__solsticeTemporal?.stop();
  const run = (globalThis as { __solsticeRun?: { id: string; tmp: string } }).__solsticeRun;
  if (!run) return;
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
