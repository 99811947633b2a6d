/**
 * API latency with a database of realistic size: 10,000 pipelines (and a job each) over 20
 * repositories, and one finished job whose 100,000-line log is in the blob store. The API is
 * served as in production, mounted into the job page's server, and called over HTTP with a
 * read token, one request at a time (keep-alive), each route in turn so a busy machine slows
 * them alike. Prints p50 / p99 per route.
 *
 *   npm run bench:api -- [--pipelines 10000] [--requests 300] [--log-lines 100000]
 *
 * Uses DATABASE_URL (default the local server) to create a throwaway database next to it.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { apiServiceOptions } from '../api/service';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { FsBlobStore } from '../storage/blob-store';
import { createDb } from '../storage/db';
import { JobStore, type LogLineRecord } from '../storage/job-store';
import { migrate } from '../storage/migrate';
import { startJobPage } from '../web/job-page/server';
import { freshDatabase, percentile } from './fixtures';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pipelines: { type: 'string', default: '10000' },
      requests: { type: 'string', default: '300' },
      'log-lines': { type: 'string', default: '100000' },
    },
  });
  const pipelineCount = Number(values.pipelines);
  const requests = Number(values.requests);
  const logLines = Number(values['log-lines']);
  const database = await freshDatabase(
    process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  );
  await migrate({ databaseUrl: database.url });
  const blobRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-api-'));
  const cfg = loadConfig({ databaseUrl: database.url, blobFsRoot: blobRoot }, {});
  const db = createDb(cfg);
  const blobs = new FsBlobStore(blobRoot);
  const jobs = new JobStore(db, blobs);
  const log = createLogger('bench-api');
  log.level = 'warn';
  const api = apiServiceOptions(cfg, db);
  let page: Awaited<ReturnType<typeof startJobPage>> | undefined;
  try {
    const repos = Array.from({ length: 20 }, (_, i) => `https://forge.example/acme/app-${i}.git`);
    const began = Date.now() - pipelineCount * 60_000;
    for (let from = 0; from < pipelineCount; from += 1000) {
      const rows = Array.from({ length: Math.min(1000, pipelineCount - from) }, (_, k) => {
        const i = from + k;
        const id = randomUUID();
        return {
          id,
          workflowId: `bench/${id}`,
          repoUrl: repos[i % repos.length],
          commitSha: i.toString(16).padStart(40, '0'),
          ref: i % 3 === 0 ? 'refs/heads/feature' : 'refs/heads/main',
          state: ['success', 'failure', 'success', 'error'][i % 4],
          createdAt: new Date(began + i * 60_000),
        };
      });
      await db.pipeline.createMany({ data: rows });
      await db.job.createMany({
        data: rows.map((p) => ({
          id: randomUUID(),
          workflowId: `${p.workflowId}/job`,
          repoUrl: p.repoUrl,
          commitSha: p.commitSha,
          ref: p.ref,
          label: 'local',
          state: p.state as 'success' | 'failure' | 'error',
          createdAt: p.createdAt,
        })),
      });
    }
    // The job whose log and status are read: finished, its log archived as finished jobs' are.
    const jobId = randomUUID();
    await jobs.recordJob(
      {
        jobId,
        source: 'manual',
        repoUrl: repos[0],
        commitSha: 'f'.repeat(40),
        label: 'local',
        timeoutMs: 1,
        bootTimeoutMs: 1,
        maxMachineAttempts: 1,
      },
      `bench/${jobId}`,
    );
    for (let seq = 1; seq <= logLines; seq += 5000) {
      const batch: LogLineRecord[] = [];
      for (let s = seq; s < seq + 5000 && s <= logLines; s++)
        batch.push({ seq: s, stream: 'stdout', text: `line ${s} ${'x'.repeat(180)}`, time: new Date() });
      await jobs.appendLogLines(jobId, batch);
    }
    await jobs.recordSteps(jobId, 1, [
      {
        index: 1,
        name: 'build',
        outcome: 'success',
        exitCode: 0,
        continueOnError: false,
        startedAt: new Date(),
        durationMs: 1000,
        firstSeq: 1,
        lastSeq: logLines,
      },
    ]);
    await jobs.finalize(jobId, { state: 'success', exitCode: 0 });
    await jobs.logs.archive(jobId);

    page = await startJobPage({ addr: '127.0.0.1:0', jobs, blobs, log, api });
    const { token } = await api.tokens.create({ name: 'bench', scope: 'read' });
    const headers = { authorization: `Bearer ${token}` };
    const middle = Math.floor(logLines / 2);
    const routes: { name: string; path: string }[] = [
      { name: 'status (GET /v1/jobs/:id)', path: `/api/v1/jobs/${jobId}` },
      {
        name: 'log window, 1000 lines mid-log',
        path: `/api/v1/jobs/${jobId}/log?after=${middle}&limit=1000`,
      },
      { name: 'log window, 100 lines', path: `/api/v1/jobs/${jobId}/log?after=${middle}&limit=100` },
      { name: 'pipelines, first page of 50', path: '/api/v1/pipelines?per_page=50' },
      { name: 'pipelines, page 100 of 50', path: '/api/v1/pipelines?per_page=50&page=100' },
      {
        name: 'pipelines, repo+branch+state filter',
        path: '/api/v1/pipelines?repo=app-7&branch=main&state=failure&per_page=50',
      },
      { name: 'jobs, first page of 50', path: '/api/v1/jobs?per_page=50' },
    ];
    const times = routes.map((): number[] => []);
    for (const r of routes) {
      // Warm-up: the first requests pay for connections and query plans.
      for (let k = 0; k < 5; k++) await (await fetch(`${page.url}${r.path}`, { headers })).arrayBuffer();
      const res = await fetch(`${page.url}${r.path}`, { headers });
      if (res.status !== 200) throw new Error(`${r.path}: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    }
    for (let n = 0; n < requests; n++) {
      for (const [i, r] of routes.entries()) {
        const t0 = performance.now();
        const res = await fetch(`${page.url}${r.path}`, { headers });
        await res.arrayBuffer();
        times[i].push(performance.now() - t0);
      }
    }
    console.log(
      `\nSolstice API latency: ${pipelineCount} pipelines and jobs in the database, a ${logLines}-line archived log, ${requests} requests per route, one at a time; ${os.cpus().length} CPUs\n`,
    );
    console.log(`| ${'route'.padEnd(38)} | p50 ms | p99 ms |`);
    console.log(`| ${'-'.repeat(38)} | ------ | ------ |`);
    for (const [i, r] of routes.entries()) {
      const sorted = [...times[i]].sort((a, b) => a - b);
      console.log(
        `| ${r.name.padEnd(38)} | ${percentile(sorted, 50).toFixed(1).padStart(6)} | ${percentile(sorted, 99).toFixed(1).padStart(6)} |`,
      );
    }
  } finally {
    await page?.close();
    await api.close();
    await db.$disconnect();
    await database.drop();
    fs.rmSync(blobRoot, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
