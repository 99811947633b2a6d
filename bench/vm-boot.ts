/**
 * VM boot cost, side by side in one run, on the image infra/images/build.sh made:
 *
 *   plain     qemu-system-x86_64 started by hand with the same command line and a seed whose
 *             runcmd downloads the runner and runs it (`--version`): start → that first
 *             runner line on the serial console.
 *   solstice  a job through the real stack (Temporal, PostgreSQL, log service, worker, QEMU
 *             provider): enqueue → runner connected (the job's startedAt).
 *   teardown  the job's last log line → its VM recorded destroyed (QMP power-down, then
 *             SIGTERM/SIGKILL, folder removed).
 *
 *   npm run bench:vm -- [--runs 1] [--accel tcg|kvm|auto]
 *
 * Uses DATABASE_URL if set (a fresh database is created next to it), else embedded PostgreSQL.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { commitRepo, freeStackAddresses, freshDatabase, runBareJob, writeGuestImageMap } from './fixtures';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { connectClient } from '../platform/temporal';
import { qemuArgs, RELAY_SOURCE, resolveAccel, vmFiles } from '../provisioning/qemu/command-line';
import { loadImageMap, type Accel } from '../provisioning/qemu/image-map';
import { GUEST_RUNNER_ADDR } from '../provisioning/qemu/provider';
import { runnerBundlePath } from '../runner-api/runner-bundle';
import { startRunnerServer } from '../runner-api/runner-download';
import { startStack } from '../devstack/stack';

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Boots the image by hand; returns ms from spawn to the runner's first line on the console. */
async function plainBoot(imageMapFile: string, accel: Accel, scratch: string): Promise<number> {
  const map = loadImageMap(imageMapFile);
  const image = map.images[map.defaultLabel];
  const server = await startRunnerServer({ addr: '127.0.0.1:0', bundlePath: runnerBundlePath() });
  const dir = fs.mkdtempSync(path.join(scratch, 'plain-'));
  const files = vmFiles(dir);
  try {
    const userData = `#cloud-config\nruncmd:\n  - [sh, -c, 'curl -fsS --retry 10 --retry-connrefused -o /tmp/runner.js http://${GUEST_RUNNER_ADDR}:${server.port}/runner.js && echo "FIRST-RUNNER-LINE $(node /tmp/runner.js --version)"']\n`;
    fs.writeFileSync(path.join(dir, 'user-data'), userData);
    fs.writeFileSync(path.join(dir, 'meta-data'), 'instance-id: plain\nlocal-hostname: plain\n');
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
    const args = qemuArgs({
      name: 'solstice-bench-plain',
      image,
      accel: resolveAccel(image.options.accel ?? accel),
      files,
      forwards: [{ guestAddr: GUEST_RUNNER_ADDR, guestPort: server.port, hostPort: server.port }],
      node: process.execPath,
    });
    fs.writeFileSync(files.relay, RELAY_SOURCE);
    const started = Date.now();
    const qemu = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
    try {
      const consoleHas = () => {
        try {
          return /FIRST-RUNNER-LINE \d/.test(fs.readFileSync(files.console, 'utf8'));
        } catch {
          return false;
        }
      };
      await waitFor(consoleHas, 15 * 60_000, 'the runner line on the plain VM console');
      return Date.now() - started;
    } finally {
      qemu.kill('SIGKILL');
    }
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '1' },
      accel: { type: 'string', default: 'tcg' },
    },
  });
  const runs = Number(values.runs);
  const accel = values.accel as Accel;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-vm-'));
  const imageMap = writeGuestImageMap(scratch);

  const database = process.env.DATABASE_URL ? await freshDatabase(process.env.DATABASE_URL) : undefined;
  const cfg = loadConfig({
    stateDir: scratch,
    databaseUrl: database?.url,
    ...(await freeStackAddresses()),
    workspaceRoot: path.join(scratch, 'machines'),
    taskQueue: 'bench-vm',
    provider: 'qemu',
    imageMap,
    qemuAccel: accel,
    bootTimeoutMs: '15m',
  });
  process.env.LOG_LEVEL ??= 'warn';
  const stack = await startStack(cfg, createLogger('bench'));
  const temporal = await connectClient(stack.cfg);
  const repo = commitRepo({ '.solstice/job.sh': '#!/bin/sh\necho bench\n' });

  const rows: { plain: number; solstice: number; teardown: number }[] = [];
  for (let i = 0; i < runs; i++) {
    // Alternating which goes first spreads a changing host load over both columns.
    let plain = i % 2 === 0 ? await plainBoot(imageMap, accel, scratch) : NaN;
    const enqueuedAt = Date.now();
    const job = await runBareJob(temporal.client, stack, repo, 250);
    const jobId = job.id;
    if (job.state !== 'success' || !job.startedAt)
      throw new Error(`bench job ended ${job.state}: ${job.message}`);
    const lines = await stack.jobs.logLinesAfter(jobId, 0, 10_000);
    const lastLine = lines[lines.length - 1]?.time.getTime() ?? job.startedAt.getTime();
    const vm = await stack.jobs.db.vm.findFirst({ where: { jobId } });
    if (Number.isNaN(plain)) plain = await plainBoot(imageMap, accel, scratch);
    rows.push({
      plain,
      solstice: job.startedAt.getTime() - enqueuedAt,
      teardown: (vm?.destroyedAt?.getTime() ?? NaN) - lastLine,
    });
    console.error(`run ${i + 1}/${runs}: ${JSON.stringify(rows[rows.length - 1])}`);
  }

  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`.padStart(9);
  console.log(
    `\nVM boot (${accel}, 1 vCPU, 1 GiB; ${os.cpus().length} host CPUs, load ${os.loadavg()[0].toFixed(1)})\n`,
  );
  console.log(
    '| run | plain qemu → first runner line | Solstice enqueue → runner connected | ratio | teardown |',
  );
  console.log(
    '|-----|--------------------------------|-------------------------------------|-------|----------|',
  );
  rows.forEach((r, i) =>
    console.log(
      `| ${String(i + 1).padStart(3)} | ${s(r.plain).padStart(30)} | ${s(r.solstice).padStart(35)} | ${(r.solstice / r.plain).toFixed(2).padStart(5)} | ${s(r.teardown)} |`,
    ),
  );

  await temporal.close();
  await stack.stop();
  await database?.drop();
  fs.rmSync(repo.dir, { recursive: true, force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
