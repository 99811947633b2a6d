/**
 * Job throughput and overhead through the local provider, on the real stack (PostgreSQL,
 * Temporal dev server, log service, runner server, worker).
 *
 *   npm run bench -- [--jobs 50] [--concurrency 10] [--script-ms 500]
 *                    [--temporal dev,cluster,cluster-split]
 *
 * With --temporal, the same run against each Temporal listed (bench/temporal-backends.ts), then
 * their figures side by side.
 *
 * Each job runs a trivial script that prints its own start and end time, so the overhead is
 * measured as (enqueue → job finalized) minus the script's own run time.
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
import { commitRepo, freeStackAddresses, freshDatabase, percentile, runBareJob } from './fixtures';
import { parseTemporalFlag, startBenchTemporal, type BenchTemporal } from './temporal-backends';

function makeRepo(scriptMs: number): { dir: string; sha: string } {
  const script = `#!/bin/sh\necho "bench-start $(date +%s%3N)"\nsleep ${(scriptMs / 1000).toFixed(3)}\necho "bench-end $(date +%s%3N)"\n`;
  return commitRepo({ '.solstice/job.sh': script });
}

const OPTIONS = {
  jobs: { type: 'string', default: '50' },
  concurrency: { type: 'string', default: '10' },
  'script-ms': { type: 'string', default: '500' },
  temporal: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** The figures the side-by-side table compares. */
interface Summary {
  ok: number;
  failed: number;
  jobsPerMinute: number;
  overheadP50: number;
  overheadP95: number;
  startP50: number;
}

/** One run against `temporalAddress` (else the stack's own: TEMPORAL_ADDRESS or a dev server). */
async function runBench(values: Values, temporalAddress?: string): Promise<Summary> {
  const total = Number(values.jobs);
  const concurrency = Number(values.concurrency);
  const scriptMs = Number(values['script-ms']);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-'));
  const database = process.env.DATABASE_URL ? await freshDatabase(process.env.DATABASE_URL) : undefined;
  const cfg = loadConfig({
    stateDir,
    databaseUrl: database?.url,
    ...(await freeStackAddresses()),
    workspaceRoot: path.join(stateDir, 'machines'),
    taskQueue: 'bench',
    ...(temporalAddress ? { temporalAddress } : {}),
  });
  process.env.LOG_LEVEL ??= 'warn';
  const stack = await startStack(cfg, createLogger('bench'));
  const temporal = await connectClient(stack.cfg);
  const repo = makeRepo(scriptMs);
  console.error(`bench: ${total} jobs, ${concurrency} at a time, script ${scriptMs} ms`);

  interface Sample {
    startLatency: number;
    overhead: number;
  }
  const samples: Sample[] = [];
  let failed = 0;
  let next = 0;
  const began = Date.now();
  async function lane(): Promise<void> {
    while (next < total) {
      next += 1;
      const enqueuedAt = Date.now();
      const job = await runBareJob(temporal.client, stack, repo, 50);
      const jobId = job.id;
      const doneAt = job.finishedAt?.getTime() ?? Date.now();
      const marks = (await stack.jobs.logLinesAfter(jobId, 0, 100))
        .map((l) => /^bench-(start|end) (\d+)$/.exec(l.text))
        .filter((m) => m !== null);
      const t = Object.fromEntries(marks.map((m) => [m[1], Number(m[2])]));
      if (job.state !== 'success' || !job.startedAt || !t.start || !t.end) {
        failed += 1;
        continue;
      }
      samples.push({
        startLatency: job.startedAt.getTime() - enqueuedAt,
        overhead: doneAt - enqueuedAt - (t.end - t.start),
      });
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  const elapsedMin = (Date.now() - began) / 60_000;

  const lat = samples.map((s) => s.startLatency).sort((a, b) => a - b);
  const ovh = samples.map((s) => s.overhead).sort((a, b) => a - b);
  const row = (name: string, xs: number[]) =>
    `| ${name.padEnd(34)} | ${[50, 95, 99].map((p) => String(Math.round(percentile(xs, p))).padStart(6)).join(' | ')} |`;
  console.log(
    `\nSolstice local-provider benchmark: ${samples.length} ok, ${failed} failed, concurrency ${concurrency}, ${os.cpus().length} CPUs\n`,
  );
  console.log(`| metric (ms)                        |    p50 |    p95 |    p99 |`);
  console.log(`|------------------------------------|--------|--------|--------|`);
  console.log(row('enqueue -> runner started', lat));
  console.log(row('job overhead beyond the script', ovh));
  console.log(`\njobs/minute: ${(samples.length / elapsedMin).toFixed(1)}`);

  await temporal.close();
  await stack.stop();
  await database?.drop();
  fs.rmSync(stateDir, { recursive: true, force: true });
  return {
    ok: samples.length,
    failed,
    jobsPerMinute: samples.length / elapsedMin,
    overheadP50: percentile(ovh, 50),
    overheadP95: percentile(ovh, 95),
    startP50: percentile(lat, 50),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: OPTIONS });
  if (!values.temporal) {
    const r = await runBench(values);
    process.exit(r.failed > 0 ? 1 : 0);
  }
  const results: [BenchTemporal, Summary][] = [];
  for (const kind of parseTemporalFlag(values.temporal)) {
    console.log(`\n## Temporal: ${kind}`);
    const server = await startBenchTemporal(kind);
    try {
      results.push([kind, await runBench(values, server.address)]);
    } finally {
      await server.stop();
    }
  }
  console.log('\n## Side by side\n');
  console.log(
    '| Temporal | ok | failed | jobs/min | enqueue → runner p50 ms | overhead p50 ms | overhead p95 ms |',
  );
  console.log(
    '| -------- | -: | -----: | -------: | ----------------------: | --------------: | --------------: |',
  );
  for (const [kind, r] of results)
    console.log(
      `| ${kind} | ${r.ok} | ${r.failed} | ${r.jobsPerMinute.toFixed(1)} | ${Math.round(r.startP50)} | ${Math.round(r.overheadP50)} | ${Math.round(r.overheadP95)} |`,
    );
  process.exit(results.some(([, r]) => r.failed > 0) ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
