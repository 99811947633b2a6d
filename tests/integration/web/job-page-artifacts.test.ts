/**
 * Issue 21: the job page's artifacts table is bounded. A job with more artifacts than the
 * page lists shows the first 200 in path order and counts the rest. Jobs and artifacts are
 * inserted straight into a real database.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../../storage/blob-store';
import { createLogger } from '../../../platform/logger';
import { loadConfig } from '../../../platform/config';
import { createDb, type Db } from '../../../storage/db';
import { JobStore } from '../../../storage/job-store';
import { startJobPage, type RunningJobPage } from '../../../web/job-page/server';
import { createTestDatabase, type TestDatabase } from '../../support/database';

const SHOWN = 200;

let database: TestDatabase;
let db: Db;
let page: RunningJobPage;
let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-job-page-artifacts-'));
  database = await createTestDatabase();
  db = createDb(loadConfig({ databaseUrl: database.url }, {}));
  const log = createLogger('test');
  log.level = 'warn';
  page = await startJobPage({
    addr: '127.0.0.1:0',
    jobs: new JobStore(db),
    blobs: new FsBlobStore(path.join(tmp, 'blobs')),
    log,
  });
});

afterAll(async () => {
  await page?.close();
  await db?.$disconnect();
  await database?.drop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const artifactPath = (i: number) => `out/file-${String(i).padStart(4, '0')}.txt`;

/** A finished job with `n` artifacts, in the database only. */
async function jobWithArtifacts(n: number): Promise<string> {
  const jobId = randomUUID();
  await new JobStore(db).recordJob(
    {
      jobId,
      source: 'manual',
      repoUrl: '/repo',
      commitSha: 'abcdef1234567',
      label: 'local',
      timeoutMs: 1,
      bootTimeoutMs: 1,
      maxMachineAttempts: 1,
    },
    `test-page/${jobId}`,
  );
  await db.artifact.createMany({
    data: Array.from({ length: n }, (_, i) => ({
      jobId,
      path: artifactPath(i),
      size: BigInt(i),
      sha256: 'a'.repeat(64),
    })),
  });
  return jobId;
}

const rows = (html: string) => html.match(/<tr><td><a href="[^"]*\/artifacts\/[^"]*" download>/g) ?? [];

test('a job with 250 artifacts lists the first 200 in path order and counts the other 50', async () => {
  const jobId = await jobWithArtifacts(250);
  const res = await fetch(`${page.url}/jobs/${jobId}`);
  expect(res.status).toBe(200);
  const html = await res.text();
  expect(rows(html)).toHaveLength(SHOWN);
  expect(html).toContain(`>${artifactPath(0)}</a>`);
  expect(html).toContain(`>${artifactPath(SHOWN - 1)}</a>`);
  expect(html).not.toContain(`>${artifactPath(SHOWN)}</a>`);
  expect(html).toContain('<p class="more">and 50 more artifacts, not listed</p>');
});

test('a job with exactly 200 artifacts lists them all and no "more" line', async () => {
  const jobId = await jobWithArtifacts(SHOWN);
  const html = await (await fetch(`${page.url}/jobs/${jobId}`)).text();
  expect(rows(html)).toHaveLength(SHOWN);
  expect(html).not.toContain('more artifacts');
});
