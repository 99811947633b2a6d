/**
 * The final log: at job end the whole log goes from the database to the blob store, gzip-compressed,
 * under logBlobKey with its line index, into the filesystem store and a real S3-compatible server
 * (versitygw); its chunks leave PostgreSQL and any window of it is read back from the store.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  finalizeLog,
  LOG_BLOB_CONTENT_TYPE,
  logBlobKey,
  logIndexKey,
} from '../../../activities/finalize-log';
import { FsBlobStore, type BlobStore } from '../../../storage/blob-store';
import { loadConfig } from '../../../platform/config';
import { createDb, type Db } from '../../../storage/db';
import { JobStore } from '../../../storage/job-store';
import { startS3DevServer, type S3DevServer } from '../../../devstack/s3-dev-server';
import { S3BlobStore } from '../../../storage/s3-blob-store';
import { createTestDatabase, type TestDatabase } from '../../support/database';

let database: TestDatabase;
let db: Db;
let jobs: JobStore;
let s3: S3DevServer;
let tmp: string;
let stores: { name: string; store: BlobStore }[];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-finalize-'));
  database = await createTestDatabase();
  db = createDb(loadConfig({ databaseUrl: database.url }, {}));
  jobs = new JobStore(db);
  s3 = await startS3DevServer({ logFile: path.join(tmp, 'versitygw.log'), buckets: ['logs'] });
  stores = [
    { name: 'filesystem', store: new FsBlobStore(path.join(tmp, 'blobs')) },
    {
      name: 's3',
      store: new S3BlobStore({
        bucket: 'logs',
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: s3.credentials,
      }),
    },
  ];
});

afterAll(async () => {
  await Promise.all((stores ?? []).map((s) => s.store.close()));
  await s3?.stop();
  await db?.$disconnect();
  await database?.drop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A job whose log has `count` lines with unicode and a long line, more than one page. */
async function jobWithLog(count: number): Promise<{ id: string; text: string; texts: string[] }> {
  const id = randomUUID();
  await db.job.create({
    data: {
      id,
      workflowId: `test/${id}`,
      repoUrl: '/r',
      commitSha: 'a'.repeat(40),
      state: 'success',
      attempt: 1,
    },
  });
  const texts = Array.from({ length: count }, (_, i) =>
    i === 7 ? 'x'.repeat(70_000) : `line ${i + 1} ✓ ünïcødé 日本語 🚀`,
  );
  for (let start = 0; start < count; start += 2000) {
    await jobs.appendLogLines(
      id,
      texts.slice(start, start + 2000).map((text, j) => ({
        seq: start + j + 1,
        stream: 'stdout',
        text,
        time: new Date(),
      })),
    );
  }
  return { id, texts, text: texts.map((t) => `${t}\n`).join('') };
}

test.each(['filesystem', 's3'])(
  '%s: the log is stored gzip-compressed under jobs/<id>/log.txt.gz',
  async (name) => {
    const { store } = stores.find((s) => s.name === name) as { store: BlobStore };
    const job = await jobWithLog(12_345);
    const key = await finalizeLog(jobs, store, job.id);
    expect(key).toBe(`jobs/${job.id}/log.txt.gz`);
    expect(key).toBe(logBlobKey(job.id));
    const stored = await store.get(key);
    expect(stored?.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b])); // gzip magic
    expect(gunzipSync(stored as Buffer).toString('utf8')).toBe(job.text);
    expect((stored as Buffer).length).toBeLessThan(Buffer.byteLength(job.text) / 4);

    // No rows left; windows anywhere in it come from the store (a fresh reader: no cached index).
    expect(await db.logChunk.count({ where: { jobId: job.id } })).toBe(0);
    expect(await store.get(logIndexKey(job.id))).toBeDefined();
    const reader = new JobStore(db, store);
    for (const after of [0, 6, 7, 5000, 11_345, 12_344]) {
      const got = await reader.logLinesAfter(job.id, after, 1000);
      expect(got.map((l) => l.text)).toEqual(job.texts.slice(after, after + 1000));
      expect(got[0].seq).toBe(after + 1);
    }

    // Finalizing again (an activity retry) leaves it as it is.
    await finalizeLog(jobs, store, job.id);
    expect(gunzipSync((await store.get(key)) as Buffer).toString('utf8')).toBe(job.text);
  },
);

test('s3: the object has a gzip content type', async () => {
  const { store } = stores.find((s) => s.name === 's3') as { store: BlobStore };
  const job = await jobWithLog(3);
  const key = await finalizeLog(jobs, store, job.id);
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.credentials,
  });
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: 'logs', Key: key }));
    expect(head.ContentType).toBe(LOG_BLOB_CONTENT_TYPE);
  } finally {
    client.destroy();
  }
});

test('a job without lines gets an empty (but valid) gzip file', async () => {
  const { store } = stores[0];
  const id = randomUUID();
  const key = await finalizeLog(jobs, store, id);
  expect(gunzipSync((await store.get(key)) as Buffer).toString()).toBe('');
});
