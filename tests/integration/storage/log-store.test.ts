/**
 * JobStore.appendLogLines, the log service's hot path: one unnest INSERT straight on the pool.
 * Text must come back exactly as sent (array literals have their own quoting), resends must
 * not duplicate, batches larger than a VALUES list could carry must fit, raw SQL must honour
 * `?schema=` like Prisma does, and no log text may stay behind in Prisma's debug history.
 */
import { randomUUID } from 'node:crypto';
import { getLogs } from '@prisma/debug';
import { loadConfig } from '../../../platform/config';
import { createDb, type Db } from '../../../storage/db';
import { JobStore, type LogLineRecord } from '../../../storage/job-store';
import { migrate } from '../../../storage/migrate';
import { createTestDatabase, type TestDatabase } from '../../support/database';

let database: TestDatabase;
let db: Db;
let jobs: JobStore;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(loadConfig({ databaseUrl: database.url }, {}));
  jobs = new JobStore(db);
});

afterAll(async () => {
  await db?.$disconnect();
  await database?.drop();
});

async function newJob(store: JobStore = jobs): Promise<string> {
  const jobId = randomUUID();
  await store.recordJob(
    {
      jobId,
      source: 'manual',
      repoUrl: '/r',
      commitSha: 'a'.repeat(40),
      label: 'local',
      timeoutMs: 60_000,
      bootTimeoutMs: 60_000,
      maxMachineAttempts: 1,
    },
    `test/${jobId}`,
  );
  return jobId;
}

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
  await db.logLine.create({ data: { jobId, seq: 2, stream: 'stdout', text: viaPrisma, time: new Date() } });
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
