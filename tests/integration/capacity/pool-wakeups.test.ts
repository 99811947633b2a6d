/**
 * A claim reaches the idle machine's held WaitForAssignment at once, and the machine taking the
 * job reaches the claiming job at once: both through PostgreSQL notifications
 * (storage/pg-wakeups.ts, PoolStore.claims and .deliveries), with waits far longer than the
 * test's patience, so only a wake-up can end them in time. The claims' listening connection
 * outlives its waiters (idle runners call again at once) until the log service stops it.
 */
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../../platform/config';
import { PoolStore } from '../../../capacity/pool-store';
import { hashJobToken, newJobToken } from '../../../model/job-token';
import { createDb, pgPool, type Db } from '../../../storage/db';
import { JobStore } from '../../../storage/job-store';
import { WAKE_CHANNEL, type WakeChannel } from '../../../storage/pg-wakeups';
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

const listeners = (channel: WakeChannel): Promise<number> => listeningConnections(db, channel);

async function until(what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const newJob = (): Promise<string> => recordTestJob(jobs);

/** An idle pool machine: booted, and its runner has looked once (with its public key). */
async function idleMachine(pool: PoolStore): Promise<{ id: string; hash: string }> {
  const id = `pool-${randomUUID()}`;
  const hash = hashJobToken(newJobToken());
  await db.$executeRaw`
    INSERT INTO pool_machines (id, host_id, label, provider, handle, token_hash)
    VALUES (${id}, 'host-a', 'local', 'local', '{}'::jsonb, ${hash})`;
  expect(await pool.waitLook(id, hash, 'public-key')).toEqual({});
  return { id, hash };
}

/** Resolves with how long `wait` took. */
async function timed(wait: Promise<void>): Promise<number> {
  const began = Date.now();
  await wait;
  return Date.now() - began;
}

test('a claim wakes the idle machine’s wait, and taking the job wakes the claim’s wait', async () => {
  const pool = new PoolStore(db);
  const machine = await idleMachine(pool);
  const jobId = await newJob();

  const claimed = pool.claims.follow(machine.id);
  const delivered = pool.deliveries.follow(jobId);
  await until(
    'both LISTEN connections',
    async () =>
      (await listeners(WAKE_CHANNEL.poolClaim)) === 1 && (await listeners(WAKE_CHANNEL.poolDelivery)) === 1,
  );

  const claimWait = timed(claimed.wait(60_000));
  const claim = await pool.claim({
    hostId: 'host-a',
    label: 'local',
    jobId,
    attempt: 1,
    seal: () => 'sealed job file',
  });
  expect(claim?.machine.id).toBe(machine.id);
  // Without the wake-up the wait takes its 60 s; a busy machine still answers in seconds.
  expect(await claimWait).toBeLessThan(5_000);

  const deliveryWait = timed(delivered.wait(60_000));
  expect(await pool.waitLook(machine.id, machine.hash, 'public-key')).toEqual({
    assignment: 'sealed job file',
  });
  expect(await deliveryWait).toBeLessThan(5_000);
  expect(await pool.delivered(machine.id)).toBe(true);

  // Another machine's wait is not woken by this claim's notification.
  const other = await idleMachine(pool);
  const otherWaiter = pool.claims.follow(other.id);
  const otherWait = timed(otherWaiter.wait(1_500));
  await pgPool(db).query(`SELECT pg_notify($1, $2)`, [WAKE_CHANNEL.poolClaim, machine.id]);
  expect(await otherWait).toBeGreaterThanOrEqual(1_400);
  otherWaiter.release();

  claimed.release();
  delivered.release();
  // The deliveries' connection closes with its last waiter; the claims' one lingers for the next call.
  await until(
    'the delivery LISTEN connection to close',
    async () => (await listeners(WAKE_CHANNEL.poolDelivery)) === 0,
  );
  expect(await listeners(WAKE_CHANNEL.poolClaim)).toBe(1);
  pool.claims.stop();
  await until(
    'the claim LISTEN connection to close',
    async () => (await listeners(WAKE_CHANNEL.poolClaim)) === 0,
  );
});
