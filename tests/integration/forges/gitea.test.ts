/**
 * Solstice against a real Gitea (devstack/gitea.ts): `solstice up`'s stack with Gitea's
 * webhooks, its token for commit statuses, and jobs on the local provider cloning from it.
 * Pushes, Replay, rerun, pull requests, statuses of planned, skipped and failed pipelines,
 * outages of RabbitMQ and of Gitea itself, private repositories (the token searched for in
 * logs, job files, spans and histories, which go to a real Jaeger) and annotated tags.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../platform/config';
import { initTelemetry, type Telemetry } from '../../../platform/telemetry';
import { createLogger } from '../../../platform/logger';
import { freePort } from '../../../platform/net';
import { connectClient } from '../../../platform/temporal';
import { startStack, type Stack } from '../../../devstack/stack';
import { createDb, type Db } from '../../../storage/db';
import { cliEnv, runCli } from '../../support/cli';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { startGitea, type Gitea, type GiteaRepo } from '../../../devstack/gitea';
import { startJaeger, type Jaeger } from '../../support/jaeger';
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
let jaeger: Jaeger;
let telemetry: Telemetry;

beforeAll(async () => {
  // Gitea first: on a machine without it this builds it once (minutes).
  gitea = await startGitea();
  jaeger = await startJaeger();
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
      // A checkout that cannot reach Gitea gives up soon, so that test is quick.
      checkoutRetryForMs: '15s',
      // Spans of the services (this process) and of the runners, to search them for the token.
      otlpEndpoint: jaeger.otlpEndpoint,
    },
    {},
  );
  telemetry = initTelemetry('solstice', cfg);
  stack = await startStack(cfg, log);
  db = createDb(cfg);
});

afterAll(async () => {
  await db?.$disconnect();
  await stack?.stop();
  await telemetry?.shutdown();
  await jaeger?.stop();
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

/** A workflow's history as text with every payload decoded (their data are bytes or base64). */
async function historyText(workflowId: string): Promise<string> {
  const temporal = await connectClient(stack.cfg);
  try {
    const history = await temporal.client.workflow.getHandle(workflowId).fetchHistory();
    return JSON.stringify(history, (k, v: unknown) => {
      if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
      if (k === 'data' && typeof v === 'string') return Buffer.from(v, 'base64').toString('utf8');
      return v;
    });
  } finally {
    await temporal.close();
  }
}

async function logOf(jobId: string): Promise<string> {
  return (await stack.jobs.logLinesAfter(jobId, 0, 10_000)).map((l) => l.text).join('\n');
}

test('a private repository builds with the forge token, and the token is in no log, job file, span or history', async () => {
  const { repo } = await repoWithHook('private', { private: true });
  expect(repo.private).toBe(true);
  const out = fs.mkdtempSync(path.join(tmp, 'private-out-'));
  const sha = await gitea.push(repo, {
    '.solstice/job.sh': [
      '#!/bin/sh',
      'set -e',
      // What the script can read: the job file, its environment, the checkout's git config.
      `cp "\${SOLSTICE_JOB_FILE:?}" ${out}/job.yaml`,
      `env > ${out}/env.txt`,
      `cat .git/config > ${out}/git-config`,
      'echo "built $(git rev-parse HEAD)"',
      '',
    ].join('\n'),
  });
  // Without the token Gitea does not serve it: what the test builds is really private.
  await expect(
    new Promise((resolve, reject) =>
      execFile(
        'git',
        ['ls-remote', repo.cloneUrl],
        { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    ),
  ).rejects.toThrow();

  const [p] = await settled(sha);
  expect(p.message).toBeNull();
  expect(p.state).toBe('success');
  const [job] = await db.pipelineJob.findMany({ where: { pipelineId: p.id } });
  const jobRow = await db.job.findUniqueOrThrow({ where: { id: job.jobId! } });
  const token = gitea.admin.token;
  expect(token.length).toBeGreaterThanOrEqual(40);

  const log = await logOf(jobRow.id);
  expect(log).toContain(`built ${sha}`);
  expect(log).not.toContain(token);
  for (const file of ['job.yaml', 'env.txt', 'git-config']) {
    const text = fs.readFileSync(path.join(out, file), 'utf8');
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(token);
  }
  for (const workflowId of [p.workflowId, jobRow.workflowId]) {
    const history = await historyText(workflowId);
    expect(history).toContain(sha);
    expect(history).not.toContain(token);
  }
  // The runner's spans arrive in batches: wait for its job span, then read every span there is.
  let spans = '';
  await waitFor(
    async () => {
      const runner = await jaeger.traces('solstice-runner', { 'solstice.job.id': jobRow.id });
      if (!runner.some((t) => t.spans.some((sp) => sp.operationName === 'runner job'))) return false;
      spans = JSON.stringify([runner, await jaeger.traces('solstice')]);
      return true;
    },
    60_000,
    "the runner's spans in Jaeger",
  );
  expect(spans).toContain(jobRow.id);
  expect(spans).not.toContain(token);
});

test('an annotated tag push runs the commit the tag points to', async () => {
  const { repo } = await repoWithHook('tag');
  const sha = await gitea.push(
    repo,
    { '.solstice/job.sh': '#!/bin/sh\necho "at $(git rev-parse HEAD)"\n' },
    { tag: { name: 'v1.0.0', annotated: true } },
  );
  // Gitea answers one ref as an object, several as a list.
  type Ref = { ref: string; object: { sha: string; type: string } };
  const refs = await gitea.api<Ref | Ref[]>('GET', `/repos/${repo.fullName}/git/refs/tags/v1.0.0`);
  const tagRef = [refs].flat().find((r) => r.ref === 'refs/tags/v1.0.0')!;
  expect(tagRef.object.type).toBe('tag');
  expect(tagRef.object.sha).not.toBe(sha);

  await waitFor(
    async () =>
      (
        await db.pipeline.findMany({
          where: { repoUrl: repo.cloneUrl, ref: 'refs/tags/v1.0.0', state: { not: 'running' } },
        })
      ).length > 0,
    5 * 60_000,
    'the tag pipeline to finish',
  );
  const [tagRun] = await db.pipeline.findMany({ where: { repoUrl: repo.cloneUrl, ref: 'refs/tags/v1.0.0' } });
  expect(tagRun.commitSha).toBe(sha);
  expect(tagRun.state).toBe('success');
  const [job] = await db.pipelineJob.findMany({ where: { pipelineId: tagRun.id } });
  expect(await logOf(job.jobId!)).toContain(`at ${sha}`);
});

test('a checkout that cannot reach Gitea ends `error` (not the script’s `failure`) and says why', async () => {
  const { repo } = await repoWithHook('unreachable');
  const gate = gatePath();
  const started = `${gate}.started`;
  const sha = await gitea.push(repo, {
    '.solstice/workflow.kdl': [
      'job "first" {',
      '  runs-on "local"',
      `  step "w" run="touch ${started}; while [ ! -e ${gate} ]; do sleep 0.2; done"`,
      '}',
      'job "second" {',
      '  needs "first"',
      '  runs-on "local"',
      '  step "s" run="true"',
      '}',
      '',
    ].join('\n'),
  });
  await waitFor(async () => fs.existsSync(started), 5 * 60_000, 'the first job to run');
  await gitea.pause();
  try {
    // The host's repository cache (runner/repo-cache.ts) has the commit since planning fetched
    // it and would serve the second job without asking Gitea (git fetches a commit it has
    // without a connection): the host forgets the repository. The first job's step no longer
    // reads its checkout, whose objects were borrowed from there.
    fs.rmSync(path.join(tmp, 'host-cache', 'git'), { recursive: true, force: true });
    // The second job starts while Gitea is down: its checkout retries for 15 s, then gives up.
    fs.writeFileSync(gate, '');
    await waitFor(
      async () => {
        const [p] = await pipelinesOf(sha);
        const second = await db.pipelineJob.findUnique({
          where: { pipelineId_name: { pipelineId: p.id, name: 'second' } },
        });
        return second !== null && !['waiting', 'running'].includes(second.state);
      },
      5 * 60_000,
      'the second job to end',
    );
  } finally {
    await gitea.start();
  }
  const [p] = await settled(sha);
  const second = await db.pipelineJob.findUniqueOrThrow({
    where: { pipelineId_name: { pipelineId: p.id, name: 'second' } },
  });
  expect(second.state).toBe('error');
  expect(second.message).toMatch(/could not fetch repository http:\/\/127\.0\.0\.1:\d+\//);
  expect(p.state).toBe('error');
  expect(await logOf(second.jobId!)).toContain('The repository is unreachable');
  await waitFor(
    async () => (await gitea.latestStatuses(repo, sha)).get('solstice/second')?.state === 'error',
    2 * 60_000,
    'the error status once Gitea is back',
  );
});

test('Gitea down for 2 minutes across a job’s end: once it is back, the final statuses arrive', async () => {
  const { repo } = await repoWithHook('outage');
  const gate = gatePath();
  const started = `${gate}.started`;
  const sha = await gitea.push(repo, {
    '.solstice/workflow.kdl': `job "slow" {\n  runs-on "local"\n  step "w" run="touch ${started}; while [ ! -e ${gate} ]; do sleep 0.2; done"\n}\n`,
  });
  // Past its checkout (the step runs) and its `running` status is on the commit.
  await waitFor(async () => fs.existsSync(started), 5 * 60_000, 'the job step to run');
  await waitFor(
    async () => (await gitea.latestStatuses(repo, sha)).get('solstice/slow')?.description === 'running',
    60_000,
    'the running status',
  );
  await gitea.pause();
  const down = Date.now();
  let back: number;
  try {
    fs.writeFileSync(gate, '');
    const [p] = await pipelinesOf(sha);
    await waitFor(
      async () =>
        (await db.pipelineJob.findUnique({ where: { pipelineId_name: { pipelineId: p.id, name: 'slow' } } }))
          ?.state === 'success',
      5 * 60_000,
      'the job to succeed while Gitea is down',
    );
    // The pipeline waits for the forge to have the job's final state.
    expect((await pipelinesOf(sha))[0].state).toBe('running');
    await new Promise((r) => setTimeout(r, Math.max(0, 120_000 - (Date.now() - down))));
  } finally {
    await gitea.start();
    back = Date.now();
  }
  await waitFor(
    async () => (await gitea.latestStatuses(repo, sha)).get('solstice/slow')?.state === 'success',
    3 * 60_000,
    'the final status after the outage',
  );
  // Retries are at most 30 s apart: the status does not wait long for a forge that is back.
  expect(Date.now() - back).toBeLessThan(60_000);
  const [p] = await settled(sha);
  expect(p.state).toBe('success');
  // In order: nothing older came after the success.
  const all = (await gitea.statuses(repo, sha)).filter((st) => st.context === 'solstice/slow');
  expect(all.sort((a, b) => b.id - a.id)[0].state).toBe('success');
});
