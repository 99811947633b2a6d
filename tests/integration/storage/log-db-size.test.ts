/**
 * A database with 1,000 finished jobs of 1,000 lines each holds no log rows once they were
 * finalized: every log is in the blob store, and PostgreSQL gives the space back (after a
 * VACUUM, as autovacuum would). `npm run bench:log-db-size` prints the bytes per job.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../../storage/blob-store';
import { loadConfig } from '../../../platform/config';
import { createDb, pgPool, type Db } from '../../../storage/db';
import { JobStore } from '../../../storage/job-store';
import { createTestDatabase, type TestDatabase } from '../../support/database';

let database: TestDatabase;
let db: Db;
let root: string;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(loadConfig({ databaseUrl: database.url }, {}));
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-dbsize-'));
});

afterAll(async () => {
  await db?.$disconnect();
  await database?.drop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('1,000 finished jobs × 1,000 lines: no log rows after finalize', async () => {
  const jobs = new JobStore(db, new FsBlobStore(root));
  const pool = pgPool(db);
  const ids: string[] = [];
  for (let j = 0; j < 1000; j++) {
    const jobId = randomUUID();
    ids.push(jobId);
    await jobs.recordJob(
      {
        jobId,
        source: 'manual',
        repoUrl: '/r',
        commitSha: 'a'.repeat(40),
        label: 'local',
        timeoutMs: 1,
        bootTimeoutMs: 1,
        maxMachineAttempts: 1,
      },
      `size/${jobId}`,
    );
    await jobs.appendLogLines(
      jobId,
      Array.from({ length: 1000 }, (_, i) => ({
        seq: i + 1,
        stream: 'stdout',
        text: `job ${j} line ${i + 1} ${'x'.repeat(40)}`,
        time: new Date(),
      })),
    );
  }
  const size = async () =>
    Number((await pool.query<{ b: string }>(`SELECT pg_total_relation_size('log_chunks') AS b`)).rows[0].b);
  const running = await size();
  expect(await db.logChunk.count()).toBeGreaterThanOrEqual(2000);

  for (const jobId of ids) {
    await jobs.finalize(jobId, { state: 'success', exitCode: 0 });
    await jobs.logs.archive(jobId);
  }
  expect(await db.logChunk.count()).toBe(0);
  // FULL: a plain VACUUM frees the pages for reuse but keeps the files' size.
  await pool.query('VACUUM FULL log_chunks');
  const after = await size();
  expect(after).toBeLessThan(running / 50);
  // Every log is still whole, from the blob store.
  const sample = await jobs.logLinesAfter(ids[777], 998, 10);
  expect(sample.map((l) => l.text)).toEqual([
    `job 777 line 999 ${'x'.repeat(40)}`,
    `job 777 line 1000 ${'x'.repeat(40)}`,
  ]);
}, 600_000);
