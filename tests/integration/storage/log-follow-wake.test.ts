/**
 * Following a log (storage/log-follow.ts) is woken by PostgreSQL notifications when lines are
 * stored (storage/pg-wakeups.ts): with a poll interval far longer than the test's patience, a
 * follower still sees each new line at once, also lines stored while it was reading; the
 * listening connection closes with the last follower; and a log is read whole even when no
 * notification can arrive (the wake-ups only shorten waits).
 */
import { loadConfig } from '../../../platform/config';
import { createDb, pgPool, type Db } from '../../../storage/db';
import { JobStore, type LogLineRecord } from '../../../storage/job-store';
import { readLogPages } from '../../../storage/log-follow';
import { WAKE_CHANNEL } from '../../../storage/pg-wakeups';
import { listeningConnections, recordTestJob } from '../../support/job-records';
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

const newJob = (): Promise<string> => recordTestJob(jobs);

const line = (seq: number) => ({ seq, stream: 'stdout', text: `line ${seq}`, time: new Date() });

const seqs = (page: IteratorResult<LogLineRecord[]>): number[] =>
  page.done ? [] : page.value.map((l) => l.seq);

const listeners = (): Promise<number> => listeningConnections(db, WAKE_CHANNEL.log);

async function until(what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a follower polling every 60 s gets each stored line at once, and the listener closes after it', async () => {
  const jobId = await newJob();
  const ctrl = new AbortController();
  const follower = readLogPages(jobs, jobId, { follow: true, pollMs: 60_000, signal: ctrl.signal });
  await jobs.appendLogLines(jobId, [line(1)]);
  expect(seqs(await follower.next())).toEqual([1]);
  await until('the LISTEN connection', async () => (await listeners()) === 1);
  const latencies: number[] = [];
  for (let seq = 2; seq <= 6; seq += 1) {
    const began = Date.now();
    const next = follower.next();
    await new Promise((r) => setTimeout(r, 100)); // the follower is waiting now
    await jobs.appendLogLines(jobId, [line(seq)]);
    expect(seqs(await next)).toEqual([seq]);
    latencies.push(Date.now() - began - 100);
  }
  // Without the wake-up each would take the 60 s poll; a busy machine still answers in seconds.
  expect(Math.max(...latencies)).toBeLessThan(5_000);
  ctrl.abort();
  await follower.return(undefined);
  await until('the LISTEN connection to close', async () => (await listeners()) === 0);
});

test('lines stored while the follower was reading are not left to the next poll', async () => {
  const jobId = await newJob();
  const ctrl = new AbortController();
  const follower = readLogPages(jobs, jobId, { follow: true, pollMs: 60_000, signal: ctrl.signal });
  await jobs.appendLogLines(jobId, [line(1)]);
  expect(seqs(await follower.next())).toEqual([1]);
  // The generator is suspended at its yield, i.e. mid-read: store the next line now.
  await until('the LISTEN connection', async () => (await listeners()) === 1);
  await jobs.appendLogLines(jobId, [line(2)]);
  await new Promise((r) => setTimeout(r, 200)); // the notification arrives while nobody waits
  const began = Date.now();
  expect(seqs(await follower.next())).toEqual([2]);
  expect(Date.now() - began).toBeLessThan(5_000);
  ctrl.abort();
  await follower.return(undefined);
});

test('without notifications (lines stored through another channel) the poll still delivers every line', async () => {
  const jobId = await newJob();
  // Stored without LogStore.append, so no notification is raised.
  await jobs.appendLogLines(jobId, [line(1)]);
  const ctrl = new AbortController();
  const got: number[] = [];
  const reading = (async () => {
    for await (const page of readLogPages(jobs, jobId, { follow: true, pollMs: 100, signal: ctrl.signal })) {
      got.push(...page.map((l) => l.seq));
      if (got.includes(3)) ctrl.abort();
    }
  })();
  await until('line 1', async () => got.length === 1);
  await pgPool(db).query(
    `UPDATE log_chunks SET last_seq = 3, data = data || $2::bytea, offsets = offsets || '{7,14}'::int[],
       streams = streams || 'oo', times = times || ARRAY[0, 0]::bigint[] WHERE job_id = $1::uuid`,
    [jobId, Buffer.from('line 2\nline 3\n')],
  );
  await reading;
  expect(got).toEqual([1, 2, 3]);
});
