/**
 * Solstice against a real Gitea (tests/support/gitea.ts): `solstice up`'s stack with Gitea's
 * webhooks, its token for commit statuses, and jobs on the local provider cloning from it.
 * Pushes, Replay, rerun, pull requests, statuses of planned, skipped and failed pipelines,
 * and outages of RabbitMQ and of Gitea itself.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../platform/config';
import { createLogger } from '../../../platform/logger';
import { freePort } from '../../../platform/net';
import { connectClient } from '../../../platform/temporal';
import { startStack, type Stack } from '../../../devstack/stack';
import { createDb, type Db } from '../../../storage/db';
import { cliEnv, runCli } from '../../support/cli';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { startGitea, type Gitea, type GiteaRepo } from '../../support/gitea';
import { createTestVhost, type TestVhost } from '../../support/rabbitmq';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';
import { gatePath, waitFor } from '../../support/wait';

const SECRET = 'gitea-e2e-secret';
const PUBLIC = 'http://ci.example';
const log = createLogger('test');
log.level = 'warn';
jest.setTimeout(15 * 60_000);

let gitea: Gitea;
let vhost: TestVhost;
let database: TestDatabase;
let broker: TcpProxy;
let stack: Stack;
let db: Db;
let tmp: string;
let hookUrl: string;

beforeAll(async () => {
  // Gitea first: on a machine without it this builds it once (minutes).
  gitea = await startGitea();
  vhost = await createTestVhost();
  database = await createTestDatabase();
  broker = await startTcpProxy(() => ({ host: '127.0.0.1', port: 5672 }));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-gitea-e2e-'));
  const id = randomBytes(4).toString('hex');
  const webhookAddr = `127.0.0.1:${await freePort()}`;
  hookUrl = `http://${webhookAddr}/webhooks/gitea`;
  const cfg = loadConfig(
    {
      databaseUrl: database.url,
      temporalAddress: process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS,
      taskQueue: `gitea-${id}`,
      hostId: `gitea-${id}`,
      workspaceRoot: path.join(tmp, 'machines'),
      blobFsRoot: path.join(tmp, 'blobs'),
      stateDir: tmp,
      grpcAddr: `127.0.0.1:${await freePort()}`,
      runnerServeAddr: `127.0.0.1:${await freePort()}`,
      webhookAddr,
      jobPageAddr: `127.0.0.1:${await freePort()}`,
      amqpUrl: vhost.url.replace('127.0.0.1:5672', broker.address),
      // One start at a time, so runs start in the order the queue holds them (the outbox's).
      amqpPrefetch: '1',
      forgejoWebhookSecret: SECRET,
      forgejoToken: gitea.admin.token,
      publicUrl: PUBLIC,
      jobTimeoutMs: '5m',
      bootTimeoutMs: '2m',
    },
    {},
  );
  stack = await startStack(cfg, log);
  db = createDb(cfg);
});

afterAll(async () => {
  await db?.$disconnect();
  await stack?.stop();
  await broker?.close();
  await database?.drop();
  await vhost?.drop();
  await gitea?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function repoWithHook(
  name: string,
  opts: { private?: boolean } = {},
): Promise<{ repo: GiteaRepo; hook: number }> {
  const repo = await gitea.createRepo(`${name}-${randomBytes(3).toString('hex')}`, opts);
  const hook = await gitea.addWebhook(repo, hookUrl, SECRET);
  return { repo, hook };
}

/** Pipelines of one commit, oldest first. */
async function pipelinesOf(sha: string) {
  return db.pipeline.findMany({ where: { commitSha: sha }, orderBy: { createdAt: 'asc' } });
}

async function settled(sha: string, n = 1) {
  await waitFor(
    async () => {
      const ps = await pipelinesOf(sha);
      return ps.length >= n && ps.every((p) => p.state !== 'running');
    },
    10 * 60_000,
    `${n} pipeline(s) of ${sha.slice(0, 12)} to finish`,
  );
  return pipelinesOf(sha);
}

function states(m: Map<string, { state: string }>): Record<string, string> {
  return Object.fromEntries([...m].map(([k, v]) => [k, v.state]));
}

const gatedWorkflow = (gate: string) => `
job "build" {
  runs-on "local"
  step "wait" run="while [ ! -e ${gate} ]; do sleep 0.2; done; echo built"
}
job "test" {
  needs "build"
  runs-on "local"
  step "t" run="echo tested"
}
job "release" {
  when {
    events "tag"
  }
  runs-on "local"
  step "r" run="true"
}
`;

test('right after a push every planned job is pending, a skipped job says so; then the results arrive', async () => {
  const { repo } = await repoWithHook('statuses');
  const gate = gatePath();
  const sha = await gitea.push(repo, { '.solstice/workflow.kdl': gatedWorkflow(gate) });
  await waitFor(
    async () => {
      const s = states(await gitea.latestStatuses(repo, sha));
      return (
        s['solstice/build'] === 'pending' &&
        s['solstice/test'] === 'pending' &&
        s['solstice/release'] !== undefined
      );
    },
    5 * 60_000,
    'pending statuses for every planned job',
  );
  const early = await gitea.latestStatuses(repo, sha);
  expect(states(early)).toEqual({
    'solstice/build': 'pending',
    'solstice/test': 'pending',
    'solstice/release': 'skipped',
  });
  fs.writeFileSync(gate, '');
  await settled(sha);
  await waitFor(
    async () => (await gitea.latestStatuses(repo, sha)).get('solstice/test')?.state === 'success',
    2 * 60_000,
    'the final statuses',
  );
  const final = await gitea.latestStatuses(repo, sha);
  expect(states(final)).toEqual({
    'solstice/build': 'success',
    'solstice/test': 'success',
    'solstice/release': 'skipped',
  });
  expect(final.get('solstice/build')?.target_url).toMatch(new RegExp(`^${PUBLIC}/jobs/[0-9a-f-]{36}$`));
});

test('an invalid workflow.kdl shows one error status with the first line of the parse error', async () => {
  const { repo } = await repoWithHook('invalid');
  const sha = await gitea.push(repo, { '.solstice/workflow.kdl': 'job "x" {\n  step "a" run=\n' });
  const [p] = await settled(sha);
  expect(p.state).toBe('failure');
  await waitFor(async () => (await gitea.latestStatuses(repo, sha)).size > 0, 60_000, 'a status');
  const all = await gitea.latestStatuses(repo, sha);
  expect([...all.keys()]).toEqual(['solstice']);
  const s = all.get('solstice')!;
  expect(s.state).toBe('error');
  expect(s.description).toBe((p.message ?? '').split('\n')[0]);
  expect(s.description.length).toBeGreaterThan(0);
});

test("Gitea's Replay of a delivery starts no second run; `solstice rerun` of the commit does", async () => {
  const { repo, hook } = await repoWithHook('replay');
  const sha = await gitea.push(repo, { '.solstice/job.sh': '#!/bin/sh\necho once\n' });
  const [first] = await settled(sha);
  // The delivery id Gitea sent is the hook task's uuid, kept in the run's memo.
  const temporal = await connectClient(stack.cfg);
  let deliveryId: string;
  try {
    const d = await temporal.client.workflow.getHandle(first.workflowId).describe();
    deliveryId = String(d.memo?.deliveryId);
  } finally {
    await temporal.close();
  }
  expect(deliveryId).toMatch(/^[0-9a-f-]{36}$/);
  await gitea.replay(repo, hook, deliveryId);
  // The replayed delivery reaches the ingress and the bridge; give it time to (not) start a run.
  await new Promise((r) => setTimeout(r, 10_000));
  expect(await pipelinesOf(sha)).toHaveLength(1);

  const rerun = await runCli(['rerun', first.id], { ...cliEnv(stack.cfg), LOG_LEVEL: 'warn' });
  expect(rerun.code).toBe(0);
  const after = await settled(sha, 2);
  expect(after).toHaveLength(2);
  expect(after[1].rerunOf).toBe(first.id);
});

test('a commit pushed and then opened as a pull request has one status per run, push and PR apart', async () => {
  const { repo } = await repoWithHook('pr');
  await gitea.push(repo, { README: 'base' });
  const sha = await gitea.push(repo, { '.solstice/job.sh': '#!/bin/sh\necho hi\n' }, { branch: 'feature' });
  await settled(sha);
  await gitea.openPullRequest(repo, 'feature');
  await settled(sha, 2);
  await waitFor(async () => (await gitea.latestStatuses(repo, sha)).size >= 2, 60_000, 'two statuses');
  expect(states(await gitea.latestStatuses(repo, sha))).toEqual({
    'solstice/job': 'success',
    'solstice/pr/job': 'success',
  });
});

test('RabbitMQ down while 20 pushes arrive: once it is back, all 20 run once, in order', async () => {
  const { repo } = await repoWithHook('outbox');
  await gitea.push(repo, { '.solstice/job.sh': '#!/bin/sh\necho "$SOLSTICE_REF"\n' });
  broker.block();
  const shas: string[] = [];
  let accepted: string[];
  try {
    for (let i = 0; i < 20; i++) {
      shas.push(await gitea.push(repo, { n: String(i) }, { branch: `b${String(i).padStart(2, '0')}` }));
    }
    // The push before the outage may still be on its way too: wait for these 20.
    const waiting = async () =>
      (await db.webhookOutbox.findMany({ orderBy: { id: 'asc' } }))
        .map(
          (row) => (JSON.parse(Buffer.from(row.body).toString('utf8')) as { commit_sha: string }).commit_sha,
        )
        .filter((sha) => shas.includes(sha));
    await waitFor(async () => (await waiting()).length === 20, 5 * 60_000, '20 deliveries in the outbox');
    // Gitea delivers the hooks of concurrent pushes in an order of its own: the order to keep is
    // the one the ingress accepted them in.
    accepted = await waiting();
    expect([...accepted].sort()).toEqual([...shas].sort());
  } finally {
    broker.unblock();
  }
  for (const sha of shas) await settled(sha);
  const runs = await db.pipeline.findMany({
    where: { commitSha: { in: shas } },
    orderBy: { createdAt: 'asc' },
  });
  expect(runs).toHaveLength(20);
  // Started in that order (by Temporal's start times; the rows are written by the runs
  // themselves, concurrently, so their own timestamps do not tell the start order).
  const temporal = await connectClient(stack.cfg);
  try {
    const started = await Promise.all(
      runs.map(async (p) => ({
        sha: p.commitSha,
        at: (await temporal.client.workflow.getHandle(p.workflowId).describe()).startTime.getTime(),
      })),
    );
    expect(started.sort((a, b) => a.at - b.at).map((r) => r.sha)).toEqual(accepted);
  } finally {
    await temporal.close();
  }
  expect(runs.every((p) => p.state === 'success')).toBe(true);
});
