/**
 * Warm pool against cold start, local provider (pre-started runner processes), on the real
 * stack (PostgreSQL, Temporal dev server, log service, runner server, worker):
 *
 *   npm run bench:pool -- [--jobs 10]
 *
 * Runs `--jobs` jobs one after another twice: first without a pool (each job's machine is made
 * for it: its runner is fetched and started, then connects), then with SOLSTICE_POOLS=local=1,
 * waiting before each job until the pool has an idle machine again, so every job claims one.
 * Reports enqueue → runner started (the log service's StartJob) as p50/p95 for both. What the
 * claim adds is the same under QEMU; what a cold start costs there is the VM's boot (bench:vm).
 * Uses DATABASE_URL if set (a fresh database is created next to it), else embedded PostgreSQL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { connectClient } from '../platform/temporal';
import { startStack } from '../devstack/stack';
import { PoolStore } from '../capacity/pool-store';
import {
  commitRepo,
  freeStackAddresses,
  freshDatabase,
  percentile,
  runBareJob,
  stopStackAndPool,
} from './fixtures';

async function series(jobs: number, pools: string | undefined): Promise<number[]> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-pool-'));
  const database = process.env.DATABASE_URL ? await freshDatabase(process.env.DATABASE_URL) : undefined;
  const cfg = loadConfig({
    stateDir,
    databaseUrl: database?.url,
    ...(await freeStackAddresses()),
    workspaceRoot: path.join(stateDir, 'machines'),
    taskQueue: `bench-pool-${process.pid}-${pools ? 'warm' : 'cold'}`,
    hostId: `bench-pool-${process.pid}-${pools ? 'warm' : 'cold'}`,
    ...(pools ? { pools } : {}),
  });
  const stack = await startStack(cfg, createLogger('bench'));
  const temporal = await connectClient(stack.cfg);
  const pool = new PoolStore(stack.jobs.db);
  const repo = commitRepo({ '.solstice/job.sh': '#!/bin/sh\necho bench\n' });
  const out: number[] = [];
  try {
    for (let i = 0; i < jobs; i++) {
      if (pools) {
        const deadline = Date.now() + 120_000;
        while (!(await pool.list()).some((m) => m.state === 'idle' && !m.reservedJobId)) {
          if (Date.now() > deadline) throw new Error('no idle pool machine within 120 s');
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const enqueuedAt = Date.now();
      const job = await runBareJob(temporal.client, stack, repo);
      if (job.state !== 'success' || !job.startedAt) throw new Error(`job ${job.id} ended ${job.state}`);
      const first = (await stack.jobs.logLinesAfter(job.id, 0, 1))[0]?.text ?? '';
      if (pools && !first.startsWith('warm ')) throw new Error(`job ${job.id} did not start warm: ${first}`);
      out.push(job.startedAt.getTime() - enqueuedAt);
    }
  } finally {
    await stopStackAndPool(stack, temporal);
    await database?.drop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
  return out.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { jobs: { type: 'string', default: '10' } } });
  const jobs = Number(values.jobs);
  process.env.LOG_LEVEL ??= 'warn';
  const cold = await series(jobs, undefined);
  const warm = await series(jobs, 'local=1');
  const row = (name: string, xs: number[]) =>
    `| ${name.padEnd(40)} | ${String(xs.length).padStart(4)} | ${[50, 95].map((p) => (percentile(xs, p) / 1000).toFixed(2).padStart(6)).join(' | ')} |`;
  console.log(
    `\nwarm pool vs cold start, local provider, ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}\n`,
  );
  console.log('| enqueue → runner started (s)             | jobs |    p50 |    p95 |');
  console.log('| ---------------------------------------- | ---: | -----: | -----: |');
  console.log(row('cold: machine made for the job', cold));
  console.log(row('warm: idle machine claimed', warm));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
