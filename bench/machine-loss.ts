/**
 * How long the engine takes to notice a dead machine and to have the job running on a fresh
 * one, on the real stack with the local provider.
 *
 *   npm run bench:machine-loss -- [--kills 10] [--liveness 10s]
 *
 * Each run starts a job whose first run prints `first run` and then ticks; once that line is
 * stored every process of its machine (runner and script) is SIGKILLed, as a crashed VM or a
 * host losing power looks. Measured from the kill: until the `machine lost` line is in the job's
 * log (noticed), and until the second machine's script printed `second run` (running again).
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
import { taggedPids } from '../provisioning/process-tree';
import { waitForFinalState } from '../storage/log-follow';
import { benchStorage, commitRepo, freeStackAddresses, percentile } from './fixtures';

async function until<T>(what: string, get: () => Promise<T | undefined>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kills: { type: 'string', default: '10' },
      liveness: { type: 'string', default: '10s' },
    },
  });
  const kills = Number(values.kills);
  const { stateDir, database } = await benchStorage();
  const cfg = loadConfig({
    stateDir,
    databaseUrl: database?.url,
    ...(await freeStackAddresses()),
    workspaceRoot: path.join(stateDir, 'machines'),
    taskQueue: 'bench',
    machineLivenessMs: values.liveness,
  });
  process.env.LOG_LEVEL ??= 'warn';
  const stack = await startStack(cfg, createLogger('bench'));
  const temporal = await connectClient(stack.cfg);
  console.error(`bench: ${kills} machine kills, liveness ${cfg.machineLivenessMs} ms`);

  const noticed: number[] = [];
  const restarted: number[] = [];
  let failed = 0;
  for (let i = 0; i < kills; i++) {
    const marker = path.join(stateDir, `ran-${i}`);
    const repo = commitRepo({
      '.solstice/job.sh': [
        '#!/bin/sh',
        `if [ -e ${marker} ]; then echo "second run"; exit 0; fi`,
        `touch ${marker}`,
        'echo "first run"',
        'while true; do echo tick; sleep 1; done',
        '',
      ].join('\n'),
    });
    const { jobId } = await startJob(temporal.client, stack.cfg, {
      source: 'manual',
      repoUrl: repo.dir,
      commitSha: repo.sha,
    });
    const lineTime = (text: string) => async (): Promise<number | undefined> =>
      (await stack.jobs.logLinesAfter(jobId, 0, 100_000))
        .find((l) => l.text === text || l.text.startsWith(text))
        ?.time.getTime();
    await until('first run', lineTime('first run'));
    const vm = await stack.jobs.db.vm.findFirst({ where: { jobId, attempt: 1 } });
    if (!vm) throw new Error(`job ${jobId} has no machine`);
    const killedAt = Date.now();
    for (const pid of await taggedPids(`${cfg.hostId}/${vm.id}`)) process.kill(pid, 'SIGKILL');
    noticed.push((await until('machine lost', lineTime('machine lost: '))) - killedAt);
    restarted.push((await until('second run', lineTime('second run'))) - killedAt);
    const job = await waitForFinalState(stack.jobs, jobId, 100);
    if (job.state !== 'success' || job.attempt !== 2) failed += 1;
    console.error(`kill ${i + 1}: noticed ${noticed.at(-1)} ms, running again ${restarted.at(-1)} ms`);
  }

  const row = (name: string, xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `| ${name.padEnd(40)} | ${[50, 95].map((p) => String(Math.round(percentile(s, p))).padStart(6)).join(' | ')} |`;
  };
  console.log(
    `\nMachine loss: ${kills} kills, liveness ${cfg.machineLivenessMs} ms, ${failed} jobs not success on attempt 2, ${os.cpus().length} CPUs\n`,
  );
  console.log(`| from SIGKILL of runner + script (ms)     |    p50 |    p95 |`);
  console.log(`|------------------------------------------|--------|--------|`);
  console.log(row('machine lost noticed (log line)', noticed));
  console.log(row('job running on a fresh machine', restarted));

  await temporal.close();
  await stack.stop();
  await database?.drop();
  fs.rmSync(stateDir, { recursive: true, force: true });
  process.exit(failed > 0 ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
