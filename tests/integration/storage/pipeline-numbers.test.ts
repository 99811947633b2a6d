/**
 * Per-repository pipeline numbers (#1, #2, ...), assigned by the database when a pipeline is
 * recorded: distinct under concurrent recording, kept by a repeated record (Temporal retries
 * activities), counted per repository, and given to pipelines recorded before the migration.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../platform/config';
import type { PipelineInput } from '../../../model/domain';
import { createDb, type Db } from '../../../storage/db';
import { defaultMigrationsDir, migrate } from '../../../storage/migrate';
import { PipelineStore } from '../../../storage/pipeline-store';
import {
  createEmptyDatabase,
  createTestDatabase,
  withClient,
  type TestDatabase,
} from '../../support/database';

const databases: TestDatabase[] = [];
const clients: Db[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.$disconnect()));
  await Promise.all(databases.map((d) => d.drop()));
});

function input(repoUrl: string, pipelineId = randomUUID()): PipelineInput {
  return {
    pipelineId,
    source: 'manual',
    event: 'manual',
    repoUrl,
    commitSha: 'a'.repeat(40),
    timeoutMs: 1,
    bootTimeoutMs: 1,
    maxMachineAttempts: 1,
  };
}

function client(url: string): Db {
  const db = createDb(loadConfig({ databaseUrl: url }));
  clients.push(db);
  return db;
}

test('pipelines of one repository recorded at once get distinct numbers from 1; a retried record keeps its number', async () => {
  const database = await createTestDatabase();
  databases.push(database);
  // Separate clients (connection pools), so the inserts really run side by side.
  const stores = Array.from({ length: 4 }, () => new PipelineStore(client(database.url)));
  const ids = Array.from({ length: 40 }, () => randomUUID());
  await Promise.all(
    ids.map((id, i) => stores[i % stores.length].recordPipeline(input('/srv/app', id), `wf/${id}`)),
  );
  const numbers = await Promise.all(ids.map(async (id) => (await stores[0].getPipeline(id))?.number));
  expect([...numbers].sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
    Array.from({ length: 40 }, (_, i) => i + 1),
  );

  // Recorded again (an activity retry): same number, and the next pipeline follows without a gap.
  await stores[1].recordPipeline(input('/srv/app', ids[0]), `wf/${ids[0]}`);
  expect((await stores[0].getPipeline(ids[0]))?.number).toBe(numbers[0]);
  const next = randomUUID();
  await stores[2].recordPipeline(input('/srv/app', next), `wf/${next}`);
  expect((await stores[0].getPipeline(next))?.number).toBe(41);

  // Another repository counts from 1.
  const other = randomUUID();
  await stores[3].recordPipeline(input('https://forge.example/acme/lib.git', other), `wf/${other}`);
  expect((await stores[0].getPipeline(other))?.number).toBe(1);
  expect((await stores[0].withNumber(1)).map((p) => p.repoUrl).sort()).toEqual([
    '/srv/app',
    'https://forge.example/acme/lib.git',
  ]);
}, 60_000);

test('pipelines recorded before the migration are numbered in the order they were created, and counting goes on from there', async () => {
  const database = await createEmptyDatabase();
  databases.push(database);
  const before = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-migrations-'));
  try {
    fs.cpSync(defaultMigrationsDir(), before, { recursive: true });
    fs.rmSync(path.join(before, '20261201161000_pipeline_numbers'), { recursive: true });
    await migrate({ databaseUrl: database.url, migrationsDir: before });
  } finally {
    fs.rmSync(before, { recursive: true, force: true });
  }
  const old = [randomUUID(), randomUUID(), randomUUID()];
  await withClient(database.url, async (c) => {
    for (const [i, id] of old.entries())
      await c.query(
        `INSERT INTO pipelines (id, workflow_id, repo_url, commit_sha, created_at) VALUES ($1, $2, '/srv/app', $3, now() - make_interval(mins => $4))`,
        // The first id is the newest: numbers follow created_at, not insertion order.
        [id, `wf/${id}`, 'b'.repeat(40), i === 0 ? 1 : 10 - i],
      );
  });
  await migrate({ databaseUrl: database.url });
  const store = new PipelineStore(client(database.url));
  expect(await Promise.all(old.map(async (id) => (await store.getPipeline(id))?.number))).toEqual([3, 1, 2]);
  const next = randomUUID();
  await store.recordPipeline(input('/srv/app', next), `wf/${next}`);
  expect((await store.getPipeline(next))?.number).toBe(4);
}, 60_000);
