/**
 * VM start cost, side by side in one run, on the image infra/images/build.sh made:
 *
 *   plain     qemu-system-x86_64 started by hand with the same command line and a seed whose
 *             runcmd downloads the runner and runs it (`--version`): start → that first
 *             runner line on the serial console (`--plain` runs).
 *   cold      jobs through the real stack (Temporal, PostgreSQL, log service, worker, QEMU
 *             provider) without a pool: enqueue → runner started (the log service's StartJob).
 *   warm      the same with SOLSTICE_POOLS=debian-12=1: each job claims the idle VM once the
 *             pool is settled (one VM idle, none booting), as a job that finds the pool ready
 *             does: enqueue → runner started. The refill booted after the previous claim is what
 *             the next job claims. The repository is a host folder, so each claim also starts
 *             its VM's git daemon.
 *   restore   one guest booted by hand, saved with QMP `migrate` to a file (`exec:cat > file`),
 *             killed, and started again with `-incoming` from that file: start → the guest's
 *             next line on its serial console. Measured only: pools do not clone snapshots
 *             (docs/qemu.md, "Warm pools": every clone would share the guest's RNG state).
 *   teardown  a cold job's last log line → its VM recorded destroyed (QMP power-down, then
 *             SIGTERM/SIGKILL, folder removed).
 *
 *   npm run bench:vm -- [--jobs 3] [--plain 1] [--accel tcg|kvm|auto]   (--jobs 0: plain and restore only)
 *
 * Uses DATABASE_URL if set (a fresh database is created next to it), else embedded PostgreSQL.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import {
  commitRepo,
  freeStackAddresses,
  freshDatabase,
  percentile,
  runBareJob,
  stopStackAndPool,
  writeGuestImageMap,
} from './fixtures';
import { PoolStore } from '../capacity/pool-store';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { connectClient } from '../platform/temporal';
import {
  qemuArgs,
  RELAY_SOURCE,
  resolveAccel,
  vmFiles,
  type GuestForward,
} from '../provisioning/qemu/command-line';
import { loadImageMap, type Accel } from '../provisioning/qemu/image-map';
import { GUEST_RUNNER_ADDR } from '../provisioning/qemu/provider';
import { QmpClient } from '../provisioning/qemu/qmp';
import { runnerBundlePath } from '../runner-api/runner-bundle';
import { startRunnerServer } from '../runner-api/runner-download';
import { startStack } from '../devstack/stack';

const LABEL = 'debian-12';

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A VM folder with an overlay and a seed running `runcmd`; returns its files and command line. */
function handVm(
  imageMapFile: string,
  accel: Accel,
  scratch: string,
  name: string,
  runcmd: unknown[],
  forwards: GuestForward[],
): { files: ReturnType<typeof vmFiles>; args: string[] } {
  const map = loadImageMap(imageMapFile);
  const image = map.images[map.defaultLabel];
  const dir = fs.mkdtempSync(path.join(scratch, `${name}-`));
  const files = vmFiles(dir);
  fs.writeFileSync(path.join(dir, 'user-data'), `#cloud-config\n${YAML.stringify({ runcmd })}`);
  fs.writeFileSync(path.join(dir, 'meta-data'), `instance-id: ${name}\nlocal-hostname: ${name}\n`);
  execFileSync('cloud-localds', [files.seedIso, path.join(dir, 'user-data'), path.join(dir, 'meta-data')]);
  execFileSync('qemu-img', [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-b',
    fs.realpathSync(image.base),
    '-F',
    'qcow2',
    files.overlay,
  ]);
  fs.writeFileSync(files.relay, RELAY_SOURCE);
  const args = qemuArgs({
    name: `solstice-bench-${name}`,
    image,
    accel: resolveAccel(image.options.accel ?? accel),
    files,
    forwards,
    node: process.execPath,
  });
  return { files, args };
}

function consoleMatches(file: string, re: RegExp): boolean {
  try {
    return re.test(fs.readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Boots the image by hand; returns ms from spawn to the runner's first line on the console. */
async function plainBoot(imageMapFile: string, accel: Accel, scratch: string): Promise<number> {
  const server = await startRunnerServer({ addr: '127.0.0.1:0', bundlePath: runnerBundlePath() });
  try {
    const { files, args } = handVm(
      imageMapFile,
      accel,
      scratch,
      'plain',
      [
        [
          'sh',
          '-c',
          `curl -fsS --retry 10 --retry-connrefused -o /tmp/runner.js http://${GUEST_RUNNER_ADDR}:${server.port}/runner.js && echo "FIRST-RUNNER-LINE $(node /tmp/runner.js --version)"`,
        ],
      ],
      [{ guestAddr: GUEST_RUNNER_ADDR, guestPort: server.port, hostPort: server.port }],
    );
    const started = Date.now();
    const qemu = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
    try {
      await waitFor(
        () => consoleMatches(files.console, /FIRST-RUNNER-LINE \d/),
        15 * 60_000,
        'the runner line on the plain VM console',
      );
      return Date.now() - started;
    } finally {
      await killed(qemu);
    }
  } finally {
    await server.close();
  }
}

interface Restore {
  bootMs: number;
  saveMs: number;
  restoreMs: number;
  stateBytes: number;
}

/**
 * Boots a guest that prints a line on its serial console every 200 ms, saves it with QMP
 * `migrate` to a file once it does, kills it, and starts a new QEMU with `-incoming` from that
 * file: start → the first line of the restored guest (its console file starts empty).
 */
async function snapshotRestore(imageMapFile: string, accel: Accel, scratch: string): Promise<Restore> {
  const { files, args } = handVm(
    imageMapFile,
    accel,
    scratch,
    'restore',
    // A transient unit: it outlives cloud-init's runcmd.
    [['systemd-run', '--unit=bench-tick', 'sh', '-c', 'while :; do echo TICK > /dev/ttyS0; sleep 0.2; done']],
    [],
  );
  const state = path.join(path.dirname(files.overlay), 'state.bin');
  const bootStart = Date.now();
  const source = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
  let bootMs: number;
  let saveMs: number;
  try {
    await waitFor(() => consoleMatches(files.console, /TICK/), 15 * 60_000, 'the guest ticking');
    bootMs = Date.now() - bootStart;
    const qmp = await QmpClient.connect(files.qmpSocket);
    const saveStart = Date.now();
    try {
      await qmp.execute('migrate', { uri: `exec:cat > ${state}` });
      for (;;) {
        const info = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
        if (info.status === 'completed') break;
        if (info.status === 'failed' || info.status === 'cancelled')
          throw new Error(`migrate to ${state} ${info.status}: ${info['error-desc'] ?? ''}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      saveMs = Date.now() - saveStart;
    } finally {
      qmp.close();
    }
  } finally {
    await killed(source);
  }
  // QEMU truncates the console only once it opens it: the old ticks must not count.
  fs.rmSync(files.console, { force: true });
  const restoreStart = Date.now();
  const target = spawn('qemu-system-x86_64', [...args, '-incoming', `exec:cat ${state}`], {
    stdio: 'ignore',
  });
  try {
    await waitFor(() => consoleMatches(files.console, /TICK/), 5 * 60_000, 'the restored guest ticking');
    return { bootMs, saveMs, restoreMs: Date.now() - restoreStart, stateBytes: fs.statSync(state).size };
  } finally {
    await killed(target);
  }
}

interface Series {
  startMs: number[];
  teardownMs: number[];
}

/** `jobs` jobs one after another on a stack of their own; warm: each claims an idle pool VM. */
async function series(
  jobs: number,
  warm: boolean,
  accel: Accel,
  scratch: string,
  imageMap: string,
): Promise<Series> {
  const stateDir = fs.mkdtempSync(path.join(scratch, warm ? 'warm-' : 'cold-'));
  const database = process.env.DATABASE_URL ? await freshDatabase(process.env.DATABASE_URL) : undefined;
  const cfg = loadConfig({
    stateDir,
    databaseUrl: database?.url,
    ...(await freeStackAddresses()),
    workspaceRoot: path.join(stateDir, 'machines'),
    taskQueue: `bench-vm-${process.pid}-${warm ? 'warm' : 'cold'}`,
    hostId: `bench-vm-${process.pid}-${warm ? 'warm' : 'cold'}`,
    provider: 'qemu',
    imageMap,
    qemuAccel: accel,
    bootTimeoutMs: '15m',
    machineLivenessMs: '60s',
    // One idle VM; each job waits until its refill is idle, so no boot shares the CPU with a claim.
    ...(warm ? { pools: `${LABEL}=1`, hostMaxMachines: '3' } : {}),
  });
  const stack = await startStack(cfg, createLogger('bench'));
  const temporal = await connectClient(stack.cfg);
  const pool = new PoolStore(stack.jobs.db);
  const repo = commitRepo({ '.solstice/job.sh': '#!/bin/sh\necho bench\n' });
  const out: Series = { startMs: [], teardownMs: [] };
  try {
    for (let i = 0; i < jobs; i++) {
      if (warm) {
        const deadline = Date.now() + 20 * 60_000;
        const settled = (ms: Awaited<ReturnType<PoolStore['list']>>) =>
          ms.some((m) => m.state === 'idle' && !m.reservedJobId) && !ms.some((m) => m.state === 'booting');
        while (!settled(await pool.list())) {
          if (Date.now() > deadline)
            throw new Error('the pool did not settle (one VM idle, none booting) within 20 min');
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const enqueuedAt = Date.now();
      const job = await runBareJob(temporal.client, stack, repo, LABEL);
      if (job.state !== 'success' || !job.startedAt)
        throw new Error(`bench job ${job.id} ended ${job.state}: ${job.message}`);
      const lines = await stack.jobs.logLinesAfter(job.id, 0, 10_000);
      if (warm && !lines[0]?.text.startsWith('warm '))
        throw new Error(`job ${job.id} did not start warm: ${lines[0]?.text}`);
      const lastLine = lines[lines.length - 1]?.time.getTime() ?? job.startedAt.getTime();
      // The job's state is final while its VM still powers off (the log is stored beside it).
      const destroyed = async () =>
        (await stack.jobs.db.vm.findFirst({ where: { jobId: job.id } }))?.destroyedAt ?? undefined;
      for (const until = Date.now() + 120_000; !(await destroyed()) && Date.now() < until;)
        await new Promise((r) => setTimeout(r, 100));
      const vm = { destroyedAt: await destroyed() };
      out.startMs.push(job.startedAt.getTime() - enqueuedAt);
      out.teardownMs.push((vm?.destroyedAt?.getTime() ?? NaN) - lastLine);
      console.error(
        `${warm ? 'warm' : 'cold'} job ${i + 1}/${jobs}: runner started after ${out.startMs[i]} ms`,
      );
    }
  } finally {
    await stopStackAndPool(stack, temporal);
    await database?.drop();
    fs.rmSync(repo.dir, { recursive: true, force: true });
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string', default: '3' },
      plain: { type: 'string', default: '1' },
      accel: { type: 'string', default: 'tcg' },
    },
  });
  const jobs = Number(values.jobs);
  const plainRuns = Number(values.plain);
  const accel = values.accel as Accel;
  process.env.LOG_LEVEL ??= 'warn';
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-vm-'));
  try {
    const imageMap = writeGuestImageMap(scratch);
    const plain: number[] = [];
    for (let i = 0; i < plainRuns; i++) plain.push(await plainBoot(imageMap, accel, scratch));
    const restore = await snapshotRestore(imageMap, accel, scratch);
    console.error(`snapshot: ${JSON.stringify(restore)}`);
    // --jobs 0: the hand-booted measurements only.
    const none: Series = { startMs: [], teardownMs: [] };
    const cold = jobs > 0 ? await series(jobs, false, accel, scratch, imageMap) : none;
    const warm = jobs > 0 ? await series(jobs, true, accel, scratch, imageMap) : none;

    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const sec = (ms: number) => (ms / 1000).toFixed(2).padStart(7);
    const row = (name: string, xs: number[]) =>
      `| ${name.padEnd(54)} | ${String(xs.length).padStart(4)} | ${sec(percentile(sorted(xs), 50))} | ${sec(percentile(sorted(xs), 95))} |`;
    console.log(
      `\nVM start (${accel}, 1 vCPU, 1 GiB; ${os.cpus().length} host CPUs, load ${os.loadavg()[0].toFixed(1)})\n`,
    );
    console.log(`| ${'what (s)'.padEnd(54)} | runs |     p50 |     p95 |`);
    console.log(`| ${'-'.repeat(54)} | ---: | ------: | ------: |`);
    if (plain.length > 0) console.log(row('plain qemu → first runner line', plain));
    if (jobs > 0) {
      console.log(row('cold: enqueue → runner started (VM booted for it)', cold.startMs));
      console.log(row('warm: enqueue → runner started (idle pool VM claimed)', warm.startMs));
    }
    console.log(row('snapshot: -incoming from a file → guest answers', [restore.restoreMs]));
    if (jobs > 0) console.log(row('teardown: last log line → VM destroyed', cold.teardownMs));
    console.log(
      `\nsnapshot: the guest booted in ${sec(restore.bootMs).trim()} s, QMP migrate to the file took ${sec(restore.saveMs).trim()} s, state ${(restore.stateBytes / 2 ** 20).toFixed(0)} MiB (not used by pools: clones would share RNG state)`,
    );
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
