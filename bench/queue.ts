/**
 * A long queue on one worker: N `echo hi` jobs enqueued at once for a label limited to one
 * machine, on the real stack with the local provider. Every job must finish, in the order it
 * asked for its slot; prints how long the queue took to drain and what each job cost.
 *
 *   npm run bench:queue -- [--jobs 300]
 *
 * Uses DATABASE_URL if set (a fresh database is created next to it), else embedded PostgreSQL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startStack } from '../devstack/stack';
import { startJob } from '../ingress/job-start';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { connectClient } from '../platform/temporal';
import { waitForFinalState } from '../storage/log-follow';
import { benchStorage, commitRepo, freeStackAddresses, percentile } from './fixtures';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { jobs: { type: 'string', default: '300' } } });
  const total = Number(values.jobs);
  const { stateDir, database } = await benchStorage();
  const cfg = loadConfig({
    stateDir,
    databaseUrl: database?.url,
    ...(await freeStackAddresses()),
    workspaceRoot: path.join(stateDir, 'machines'),
    taskQueue: 'bench',
    labelLimits: 'local=1',
  });
  process.env.LOG_LEVEL ??= 'warn';
  const stack = await startStack(cfg, createLogger('bench'));
  const temporal = await connectClient(stack.cfg);
  const repo = commitRepo({ '.solstice/job.sh': '#!/bin/sh\necho hi\n' });
  console.error(`bench: ${total} echo jobs queued for one local slot`);

  const began = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < total; i++) {
    const { jobId } = await startJob(temporal.client, stack.cfg, {
      source: 'manual',
      repoUrl: repo.dir,
      commitSha: repo.sha,
    });
    ids.push(jobId);
  }
  const enqueuedMs = Date.now() - began;
  const jobs = await Promise.all(ids.map((id) => waitForFinalState(stack.jobs, id, 500)));
  const drainedMs = Date.now() - began;
  const failed = jobs.filter((j) => j.state !== 'success').length;

  const rows = await stack.jobs.db.$queryRaw<{ granted: Date; finished: Date }[]>`
    SELECT l.granted_at AS granted, j.finished_at AS finished
    FROM leases l JOIN jobs j ON j.id = l.job_id ORDER BY l.seq`;
  const inOrder = rows.every(
    (r, i) => i === 0 || (r.granted > rows[i - 1].granted && r.finished > rows[i - 1].finished),
  );
  // One job's hold on the slot: granted until the next job's grant (the slot's cycle time).
  const cycle = rows
    .slice(1)
    .map((r, i) => r.granted.getTime() - rows[i].granted.getTime())
    .sort((a, b) => a - b);

  console.log(
    `\nLong queue: ${total} jobs, label limit local=1, ${failed} not success, FIFO ${inOrder ? 'kept' : 'BROKEN'}, ${os.cpus().length} CPUs\n`,
  );
  console.log(`| metric                                   | value  |`);
  console.log(`|------------------------------------------|--------|`);
  console.log(`| enqueue all (s)                          | ${(enqueuedMs / 1000).toFixed(1).padStart(6)} |`);
  console.log(`| queue drained (s)                        | ${(drainedMs / 1000).toFixed(1).padStart(6)} |`);
  console.log(`| slot cycle per job p50 (ms)              | ${String(percentile(cycle, 50)).padStart(6)} |`);
  console.log(`| slot cycle per job p95 (ms)              | ${String(percentile(cycle, 95)).padStart(6)} |`);

  await temporal.close();
  await stack.stop();
  await database?.drop();
  fs.rmSync(stateDir, { recursive: true, force: true });
  process.exit(failed > 0 || !inOrder ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
