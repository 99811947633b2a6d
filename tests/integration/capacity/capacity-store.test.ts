/**
 * The capacity scheduler against real PostgreSQL: many processes' worth of clients scheduling
 * at once never over-commit a label or a host, grants follow request order, and the leases of
 * a host that stopped heartbeating are reclaimed.
 */
import { randomUUID } from 'node:crypto';
import { CapacityStore } from '../../../capacity/store';
import { loadConfig } from '../../../platform/config';
import { createDb, type Db } from '../../../storage/db';
import { JobStore } from '../../../storage/job-store';
import { createTestDatabase, type TestDatabase } from '../../support/database';

let database: TestDatabase;
const clients: Db[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  const cfg = loadConfig({ databaseUrl: database.url, dbPoolMaxSize: '4' }, {});
  for (let i = 0; i < 6; i++) clients.push(createDb(cfg));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.$disconnect()));
  await database?.drop();
});

async function newJobs(n: number, label: string): Promise<string[]> {
  const jobs = new JobStore(clients[0]);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    await jobs.recordJob(
      {
        jobId: id,
        source: 'manual',
        repoUrl: '/nowhere',
        commitSha: '0'.repeat(40),
        label,
        timeoutMs: 1000,
        bootTimeoutMs: 1000,
        maxMachineAttempts: 1,
      },
      `wf-${id}`,
    );
    ids.push(id);
  }
  return ids;
}

async function granted(db: Db): Promise<{ jobId: string; hostId: string; label: string }[]> {
  return db.$queryRaw`
    SELECT job_id::text AS "jobId", host_id AS "hostId", label FROM leases
    WHERE granted_at IS NOT NULL AND released_at IS NULL ORDER BY seq`;
}

test('concurrent schedulers respect label and host limits and grant in request order', async () => {
  const stores = clients.map((c) => new CapacityStore(c));
  for (const id of ['h1', 'h2', 'h3'])
    await stores[0].registerHost({ id, taskQueue: `q@${id}`, labels: ['a', 'b'], maxMachines: 2 });
  const a = await newJobs(12, 'a');
  const b = await newJobs(12, 'b');
  for (let i = 0; i < 12; i++) {
    await stores[i % stores.length].request(a[i], 'a');
    await stores[(i + 1) % stores.length].request(b[i], 'b');
  }
  const opts = { labelLimits: { a: 4 }, hostTtlMs: 60_000 };

  // Every client schedules several times at once, as waiting jobs on many workers would.
  await Promise.all(stores.flatMap((s) => [s.schedule(opts), s.schedule(opts), s.schedule(opts)]));
  let held = await granted(clients[0]);
  // 3 hosts × 2 = 6 slots; label a may take at most 4 of them; the oldest requests win.
  expect(held).toHaveLength(6);
  const perHost = (rows: typeof held) =>
    rows.reduce<Record<string, number>>((m, r) => ({ ...m, [r.hostId]: (m[r.hostId] ?? 0) + 1 }), {});
  expect(Object.values(perHost(held)).every((n) => n <= 2)).toBe(true);
  expect(held.filter((r) => r.label === 'a').map((r) => r.jobId)).toEqual(a.slice(0, 3));
  expect(held.filter((r) => r.label === 'b').map((r) => r.jobId)).toEqual(b.slice(0, 3));
  expect(await stores[0].queuePosition(a[3])).toBe(1);
  expect(await stores[0].queuePosition(b[5])).toBe(3);
  expect(await stores[0].queuePosition(a[0])).toBeUndefined();

  // Releases and schedules racing each other still never exceed a limit.
  await Promise.all([
    ...held.slice(0, 4).map((r, i) => stores[i].release(r.jobId, 'done')),
    ...stores.map((s) => s.schedule(opts)),
  ]);
  await Promise.all(stores.map((s) => s.schedule(opts)));
  held = await granted(clients[0]);
  expect(held).toHaveLength(6);
  expect(Object.values(perHost(held)).every((n) => n <= 2)).toBe(true);
  expect(held.filter((r) => r.label === 'a').length).toBeLessThanOrEqual(4);
});

test('a host that stopped heartbeating loses its leases and gets no new ones', async () => {
  const store = new CapacityStore(clients[0]);
  await clients[0].$executeRaw`DELETE FROM leases`;
  await clients[0].$executeRaw`DELETE FROM hosts`;
  await store.registerHost({ id: 'dead', taskQueue: 'q@dead', labels: ['c'], maxMachines: 1 });
  const [first, second] = await newJobs(2, 'c');
  await store.request(first, 'c');
  await store.request(second, 'c');
  const opts = { labelLimits: {}, hostTtlMs: 60_000 };
  expect(await store.schedule(opts)).toEqual([
    { jobId: first, hostId: 'dead', taskQueue: 'q@dead', workflowId: expect.any(String) },
  ]);

  await clients[0].$executeRaw`UPDATE hosts SET last_seen = now() - interval '2 minutes' WHERE id = 'dead'`;
  await store.registerHost({ id: 'alive', taskQueue: 'q@alive', labels: ['c'], maxMachines: 1 });
  expect(await store.schedule(opts)).toEqual([
    { jobId: second, hostId: 'alive', taskQueue: 'q@alive', workflowId: expect.any(String) },
  ]);
  const lease = await store.lease(first);
  expect(lease?.releasedAt).toBeInstanceOf(Date);
  expect(lease?.releaseReason).toBe('reclaimed: host dead stopped heartbeating');
  expect((await store.lease(second))?.taskQueue).toBe('q@alive');

  // A cleanly stopped host takes no new machines either.
  await store.stopHost('alive');
  const [third] = await newJobs(1, 'c');
  await store.request(third, 'c');
  await store.release(second, 'done');
  expect(await store.schedule(opts)).toEqual([]);
  expect(await store.knownLabels()).toEqual(['c']);
});
