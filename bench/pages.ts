/**
 * Page latency with access checks: 10,000 pipelines (3 jobs each) of 50 repositories on a
 * forge, half of them private, in a throwaway database; the page server asks a stand-in
 * Forgejo API who may see what (ForgeBackedPermissions, the real cache), as in production.
 *
 *   npm run bench:pages -- [--pipelines 10000] [--repos 50] [--requests 200]
 *
 * Reports p50/p99 per page for an anonymous visitor, sequential requests over HTTP on loopback,
 * after one warm-up request each (the first request of a repository asks the forge; the rest
 * are served from the permission cache). Uses DATABASE_URL (default the local server) to
 * create the database next to it.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ForgeBackedPermissions } from '../access/forge-permissions';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { FsBlobStore } from '../storage/blob-store';
import { createDb } from '../storage/db';
import { JobStore } from '../storage/job-store';
import { migrate } from '../storage/migrate';
import { startJobPage } from '../web/job-page/server';
import { freshDatabase, percentile } from './fixtures';

const FORGE = 'https://forge.example';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pipelines: { type: 'string', default: '10000' },
      repos: { type: 'string', default: '50' },
      requests: { type: 'string', default: '200' },
    },
  });
  const total = Number(values.pipelines);
  const repos = Number(values.repos);
  const requests = Number(values.requests);
  const log = createLogger('bench');
  log.level = 'warn';

  // The forge: repository N is private when N is odd.
  let forgeCalls = 0;
  const forge = http.createServer((req, res) => {
    forgeCalls++;
    const m = /^\/api\/v1\/repos\/org\/repo-(\d+)$/.exec(req.url ?? '');
    res.writeHead(m ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(m ? { private: Number(m[1]) % 2 === 1 } : { message: 'not found' }));
  });
  await new Promise<void>((r) => forge.listen(0, '127.0.0.1', r));
  const apiUrl = `http://127.0.0.1:${(forge.address() as AddressInfo).port}/api/v1`;

  const database = await freshDatabase(
    process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  );
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-pages-'));
  try {
    await migrate({ databaseUrl: database.url });
    const db = createDb(loadConfig({ databaseUrl: database.url }, {}));
    const ids: string[] = [];
    const start = Date.now() - total * 1000;
    for (let from = 0; from < total; from += 1000) {
      const batch = [];
      for (let i = from; i < Math.min(total, from + 1000); i++) {
        const id = randomUUID();
        ids.push(id);
        batch.push({
          id,
          workflowId: `bench/${id}`,
          repoUrl: `${FORGE}/org/repo-${i % repos}.git`,
          commitSha: i.toString(16).padStart(40, '0'),
          ref: i % 3 === 0 ? 'refs/heads/feature' : 'refs/heads/main',
          state: ['success', 'failure', 'success', 'cancelled'][i % 4],
          createdAt: new Date(start + i * 1000),
        });
      }
      await db.pipeline.createMany({ data: batch });
      await db.pipelineJob.createMany({
        data: batch.flatMap((p) => [
          { pipelineId: p.id, name: 'build', needs: [], state: 'success', position: 0 },
          { pipelineId: p.id, name: 'test[node=20]', needs: ['build'], state: 'failure', position: 1 },
          {
            pipelineId: p.id,
            name: 'deploy',
            needs: ['test'],
            state: 'skipped',
            message: 'needs test',
            position: 2,
          },
        ]),
      });
    }
    const blobs = new FsBlobStore(tmp);
    const page = await startJobPage({
      addr: '127.0.0.1:0',
      jobs: new JobStore(db, blobs),
      blobs,
      log,
      access: {
        sources: {
          forge: new ForgeBackedPermissions({
            sites: [{ forge: 'forgejo', webUrl: FORGE, apiUrl }],
            userToken: () => Promise.resolve(undefined),
            cacheMs: 60_000,
            log,
          }),
          anonymousRead: 'public',
        },
      },
    });
    // A public repository's newest pipeline (repo-0 is public).
    const publicPipeline = ids[ids.length - repos];
    const pages: [string, string][] = [
      ['all pipelines (newest 50 readable)', '/pipelines'],
      ['all pipelines, ?state=failure&branch=main', '/pipelines?state=failure&branch=main'],
      ['one repository', '/repos/org/repo-0'],
      [
        'one repository, page 10 (?before=)',
        `/repos/org/repo-0?before=${new Date(start + (total - 500 * repos) * 1000).toISOString()}`,
      ],
      ['pipeline graph', `/pipelines/${publicPipeline}`],
      ['badge', '/badge/org/repo-0.svg?branch=main'],
      ['private pipeline (404)', `/pipelines/${ids[ids.length - repos + 1]}`],
    ];
    const rows: string[][] = [];
    for (const [name, url] of pages) {
      const first = await fetch(`${page.url}${url}`);
      await first.arrayBuffer();
      const times: number[] = [];
      for (let i = 0; i < requests; i++) {
        const t0 = process.hrtime.bigint();
        const res = await fetch(`${page.url}${url}`);
        await res.arrayBuffer();
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      times.sort((a, b) => a - b);
      rows.push([
        name,
        String(first.status),
        percentile(times, 50).toFixed(1),
        percentile(times, 99).toFixed(1),
      ]);
    }
    await page.close();
    await db.$disconnect();
    console.log(`${total} pipelines, ${repos} repositories (half private), ${requests} requests per page`);
    console.log(`| page | status | p50 ms | p99 ms |\n| --- | --- | --- | --- |`);
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
    console.log(`forge API calls: ${forgeCalls} (one per repository, then the cache)`);
  } finally {
    forge.close();
    await database.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
