/**
 * The log store (storage/log-store.ts): chunks while a job runs, gzip + line index in the blob
 * store once it ended. Text must come back exactly as sent, resends must not duplicate, two
 * streams of one job must not both extend it, a line-at-a-time job must still get few chunks,
 * any window must read exactly, an archived log must leave no rows, raw SQL must honour
 * `?schema=` like Prisma does, and no log text may stay behind in Prisma's debug history.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FsBlobStore } from '../../../storage/blob-store';
import { CHUNK_MAX_LINES, LogExpiredError, logBlobKey, logIndexKey } from '../../../storage/log-store';
import { randomUUID } from 'node:crypto';
import { getLogs } from '@prisma/debug';
import { loadConfig } from '../../../platform/config';
import { createDb, type Db } from '../../../storage/db';
import { JobStore, type LogLineRecord } from '../../../storage/job-store';
import { migrate } from '../../../storage/migrate';
import { recordTestJob } from '../../support/job-records';
import { createTestDatabase, type TestDatabase } from '../../support/database';

let database: TestDatabase;
let db: Db;
let jobs: JobStore;
let blobRoot: string;
let blobs: FsBlobStore;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(loadConfig({ databaseUrl: database.url }, {}));
  blobRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-logstore-'));
  blobs = new FsBlobStore(blobRoot);
  jobs = new JobStore(db, blobs);
});

afterAll(async () => {
  await db?.$disconnect();
  await database?.drop();
  if (blobRoot) fs.rmSync(blobRoot, { recursive: true, force: true });
});

const newJob = (store: JobStore = jobs): Promise<string> => recordTestJob(store);

const lines = (texts: string[], from = 1): LogLineRecord[] =>
  texts.map((text, i) => ({
    seq: from + i,
    stream: i % 3 === 0 ? 'stderr' : 'stdout',
    text,
    time: new Date(1_790_000_000_123 + i),
  }));

test('text that array literals quote comes back byte for byte, with stream and millisecond time', async () => {
  const jobId = await newJob();
  const texts = [
    '',
    'NULL',
    'null',
    '\\N',
    'a,b',
    '{x,y}',
    '"quoted"',
    "it's",
    'back\\slash \\" mix',
    'tab\there',
    '  leading and trailing  ',
    'ünïcødé 日本語 🚀',
    '\u001b[31mred\u001b[0m',
    'x'.repeat(70_000),
  ];
  const sent = lines(texts);
  expect(await jobs.appendLogLines(jobId, sent)).toBe(texts.length);
  const back = await jobs.logLinesAfter(jobId, 0, 100);
  expect(back.map((l) => ({ ...l, time: l.time.getTime() }))).toEqual(
    sent.map((l) => ({ ...l, time: l.time.getTime() })),
  );
});

test('a resend stores nothing twice and keeps the first text', async () => {
  const jobId = await newJob();
  expect(await jobs.appendLogLines(jobId, lines(['one', 'two', 'three']))).toBe(3);
  expect(await jobs.appendLogLines(jobId, lines(['TWO', 'THREE', 'four'], 2))).toBe(1);
  const back = await jobs.logLinesAfter(jobId, 0, 10);
  expect(back.map((l) => l.text)).toEqual(['one', 'two', 'three', 'four']);
});

test('one call stores more lines than a VALUES list of 65535 parameters could hold', async () => {
  const jobId = await newJob();
  const texts = Array.from({ length: 20_000 }, (_, i) => `line ${i + 1}`);
  expect(await jobs.appendLogLines(jobId, lines(texts))).toBe(20_000);
  expect(await jobs.countLogLines(jobId)).toBe(20_000);
  expect(await jobs.lastLogSeq(jobId)).toBe(20_000);
});

test('log text does not stay in Prisma debug history (a Prisma insert would)', async () => {
  const jobId = await newJob();
  const viaPool = `pool-marker-${randomUUID()}`;
  const viaPrisma = `prisma-marker-${randomUUID()}`;
  await jobs.appendLogLines(jobId, lines([viaPool]));
  // The control: the same kind of insert through Prisma is remembered, so the check can fail.
  await db.logChunk.create({
    data: {
      jobId,
      firstSeq: 2,
      lastSeq: 2,
      data: Buffer.from('x\n'),
      offsets: [0],
      streams: viaPrisma,
      times: [1n],
    },
  });
  const history = getLogs(Number.MAX_SAFE_INTEGER);
  expect(history).toContain(viaPrisma);
  expect(history).not.toContain(viaPool);
});

test('with ?schema= the insert goes to that schema, like Prisma queries do', async () => {
  const url = new URL(database.url);
  url.searchParams.set('schema', 'ci_logs');
  await migrate({ databaseUrl: url.toString() });
  const scoped = createDb(loadConfig({ databaseUrl: url.toString() }, {}));
  try {
    const store = new JobStore(scoped);
    const jobId = await newJob(store);
    expect(await store.appendLogLines(jobId, lines(['in ci_logs']))).toBe(1);
    expect((await store.logLinesAfter(jobId, 0, 10)).map((l) => l.text)).toEqual(['in ci_logs']);
    // Not in the default schema's table.
    expect(await jobs.countLogLines(jobId)).toBe(0);
  } finally {
    await scoped.$disconnect();
  }
});

const chunkCount = (jobId: string): Promise<number> => db.logChunk.count({ where: { jobId } });

test('a job that prints a line at a time still gets chunks of hundreds of lines', async () => {
  const jobId = await newJob();
  const texts = Array.from({ length: 1200 }, (_, i) => `slow line ${i + 1}`);
  for (const l of lines(texts)) expect(await jobs.appendLogLines(jobId, [l])).toBe(1);
  expect(await chunkCount(jobId)).toBe(Math.ceil(1200 / CHUNK_MAX_LINES));
  expect((await jobs.logLinesAfter(jobId, 0, 2000)).map((l) => l.text)).toEqual(texts);
});

test('two streams of one job racing with overlapping runs store every line once', async () => {
  const jobId = await newJob();
  const texts = Array.from({ length: 3000 }, (_, i) => `race ${i + 1}`);
  const all = lines(texts);
  // Each "stream" sends batches from where it thinks the log is; they overlap all the time.
  const stream = async (step: number) => {
    for (let from = 0; from < all.length; from += step)
      await jobs.appendLogLines(jobId, all.slice(from, from + step * 2));
  };
  await Promise.all([stream(70), stream(110), stream(230)]);
  const back = await jobs.logLinesAfter(jobId, 0, 5000);
  expect(back.map((l) => l.seq)).toEqual(all.map((l) => l.seq));
  expect(back.map((l) => l.text)).toEqual(texts);
});

test('lines that would leave a gap are refused', async () => {
  const jobId = await newJob();
  await jobs.appendLogLines(jobId, lines(['one']));
  await expect(jobs.appendLogLines(jobId, lines(['three'], 3))).rejects.toThrow(/does not follow line 1/);
});

describe('a finished log in the blob store', () => {
  const texts = Array.from({ length: 7_777 }, (_, i) =>
    i % 1000 === 5 ? '' : `line ${i + 1} ünï ${'x'.repeat(i % 300)}`,
  );
  let jobId: string;

  beforeAll(async () => {
    jobId = await newJob();
    for (let from = 0; from < texts.length; from += 999)
      await jobs.appendLogLines(jobId, lines(texts.slice(from, from + 999), from + 1));
    await jobs.logs.archive(jobId);
  });

  test('leaves no rows in PostgreSQL and a gzip that zcat reads as the whole log', async () => {
    expect(await chunkCount(jobId)).toBe(0);
    const gz = await blobs.get(logBlobKey(jobId));
    expect(gunzipSync(gz as Buffer).toString('utf8')).toBe(texts.map((t) => `${t}\n`).join(''));
    expect(await blobs.get(logIndexKey(jobId))).toBeDefined();
    expect(await jobs.lastLogSeq(jobId)).toBe(texts.length);
  });

  test('reads any window exactly, with streams, from a fresh store (no cached index)', async () => {
    const fresh = new JobStore(db, blobs);
    for (const after of [0, 1, 998, 999, 1000, 1001, 4321, 7000, 7775, 7776]) {
      const got = await fresh.logLinesAfter(jobId, after, 1000);
      const want = lines(texts).slice(after, after + 1000);
      expect(got.map((l) => [l.seq, l.stream, l.text])).toEqual(want.map((l) => [l.seq, l.stream, l.text]));
    }
    expect(await fresh.logLinesAfter(jobId, 7777, 10)).toEqual([]);
  });

  test('log.txt streams the same text', async () => {
    const chunks: Buffer[] = [];
    for await (const c of await jobs.logs.textStream(jobId)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(texts.map((t) => `${t}\n`).join(''));
  });

  test('archiving again changes nothing, and a late batch is not stored', async () => {
    const before = await blobs.get(logBlobKey(jobId));
    await jobs.logs.archive(jobId);
    expect(await blobs.get(logBlobKey(jobId))).toEqual(before);
    expect(await jobs.appendLogLines(jobId, lines(['late'], texts.length + 1))).toBe(0);
    expect(await chunkCount(jobId)).toBe(0);
  });

  test('expiring removes it from the blob store, and reading says when', async () => {
    const other = await newJob();
    await jobs.appendLogLines(other, lines(['doomed']));
    await jobs.logs.archive(other);
    await jobs.logs.expire(other);
    expect(await blobs.get(logBlobKey(other))).toBeUndefined();
    expect(await blobs.get(logIndexKey(other))).toBeUndefined();
    await expect(jobs.logLinesAfter(other, 0, 10)).rejects.toBeInstanceOf(LogExpiredError);
    await expect(jobs.logLinesAfter(other, 0, 10)).rejects.toThrow(/expired on \d{4}-/);
  });
});
