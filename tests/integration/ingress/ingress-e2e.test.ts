/**
 * End to end as `solstice up` runs it: a signed Forgejo push reaches the webhook ingress,
 * goes through RabbitMQ (a vhost of this file's own) and the bridge, and the job really runs
 * on the local provider. Also the CLI: `solstice enqueue` through AMQP, its direct fallback,
 * and the `bridge` / `webhook serve` commands' refusals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../platform/config';
import { createLogger } from '../../../platform/logger';
import { freePort } from '../../../platform/net';
import { PipelineStore } from '../../../storage/pipeline-store';
import { startStack, type Stack } from '../../../devstack/stack';
import { CLI, cliEnv, runCli, type CliResult } from '../../support/cli';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { jobRepo } from '../../support/git-repo';
import { createTestVhost, type TestVhost } from '../../support/rabbitmq';
import { waitFor } from '../../support/wait';
import { fixture, forgejoDelivery, send } from '../../support/webhooks';
import { readInstallationId } from '../../../storage/installation';

const SECRET = 'e2e-secret';
const log = createLogger('test');
log.level = 'warn';

let vhost: TestVhost;
let database: TestDatabase;
let stack: Stack;
let tmp: string;

beforeAll(async () => {
  vhost = await createTestVhost();
  database = await createTestDatabase();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-e2e-'));
  const id = randomBytes(4).toString('hex');
  const cfg = loadConfig(
    {
      databaseUrl: database.url,
      temporalAddress: process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS,
      taskQueue: `e2e-${id}`,
      hostId: `e2e-${id}`,
      workspaceRoot: path.join(tmp, 'machines'),
      blobFsRoot: path.join(tmp, 'blobs'),
      stateDir: tmp,
      grpcAddr: `127.0.0.1:${await freePort()}`,
      runnerServeAddr: `127.0.0.1:${await freePort()}`,
      webhookAddr: `127.0.0.1:${await freePort()}`,
      jobPageAddr: `127.0.0.1:${await freePort()}`,
      amqpUrl: vhost.url,
      forgejoWebhookSecret: SECRET,
      // The pushed repository is a folder of this host (issue 21: refused unless allowed).
      webhookLocalRepos: 'true',
      jobTimeoutMs: '2m',
      bootTimeoutMs: '60s',
    },
    {},
  );
  stack = await startStack(cfg, log);
});

afterAll(async () => {
  await stack?.stop();
  await database?.drop();
  await vhost?.drop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function solstice(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { ...cliEnv(stack.cfg), AMQP_URL: vhost.url, LOG_LEVEL: 'warn', ...env });
}

test('`solstice up` runs the bridge and the webhook ingress; a signed push runs its job', async () => {
  expect(stack.urls.rabbitmq).toContain('guest:***@127.0.0.1');
  // The installation's own queue: named after the id its database was given.
  const installationId = await readInstallationId(stack.jobs.db);
  expect(stack.urls.bridge).toContain(`consuming solstice.${installationId}.jobs.v1`);
  const webhooks = stack.urls.webhooks.replace(/\/webhooks\/.*$/, '');
  const repo = jobRepo('echo "from a webhook: $SOLSTICE_COMMIT_SHA"');
  const push = fixture('forgejo-push');
  push.after = repo.sha;
  (push.repository as Record<string, unknown>).clone_url = repo.dir;
  const d = forgejoDelivery('push', push, SECRET);
  const r = await send(webhooks, d);
  expect(r.status).toBe(202);
  const pipelineId = String(r.body.pipeline_id);
  expect(String(r.body.workflow_id)).toMatch(/^pipeline\//);
  // The same delivery again (the forge retrying) is accepted and runs nothing new.
  expect((await send(webhooks, d)).status).toBe(202);
  const pipelines = new PipelineStore(stack.jobs.db);
  await waitFor(
    async () => (await pipelines.getPipeline(pipelineId))?.state === 'success',
    90_000,
    'the pipeline to succeed',
  );
  const [entry, ...more] = await pipelines.listJobs(pipelineId);
  expect(more).toEqual([]);
  const jobId = String(entry.jobId);
  const lines = await stack.jobs.logLinesAfter(jobId, 0, 100);
  expect(lines.map((l) => l.text)).toContain(`from a webhook: ${repo.sha}`);
  // Planning fetched the commit into the host's repository cache (the local provider's, on this
  // host): the job's checkout finds it there and fetches nothing (issue 20).
  expect(lines.map((l) => l.text)).toContain(`The host's repository cache has ${repo.sha}: nothing to fetch`);
  expect(lines.filter((l) => l.text.startsWith('$ git fetch'))).toEqual([]);
  const job = await stack.jobs.getJob(jobId);
  expect(job?.workflowId).toBe(`${String(r.body.workflow_id)}/job/${entry.name}`);
  expect(job?.source).toBe('forgejo');
  expect((await pipelines.getPipeline(pipelineId))?.source).toBe('forgejo');
});

test('`solstice enqueue` goes through RabbitMQ and the bridge by default', async () => {
  const repo = jobRepo('echo via the queue');
  const r = await solstice(['enqueue', '--repo', repo.dir, '--follow']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^queued request [0-9a-f-]{36} on amqp:\/\/guest:\*\*\*@127\.0\.0\.1/m);
  expect(r.stdout).toMatch(/^pipeline [0-9a-f-]{36}$/m);
  expect(r.stdout).toMatch(/^workflow pipeline\//m);
  expect(r.stdout).toMatch(/via the queue\n/);
  expect(r.stdout).toMatch(/^pipeline [0-9a-f-]{36} success$/m);
});

test('`solstice enqueue` without a reachable RabbitMQ says so and starts the job directly', async () => {
  const repo = jobRepo('echo direct');
  const port = await freePort();
  const r = await solstice(['enqueue', '--repo', repo.dir, '--follow'], {
    AMQP_URL: `amqp://guest:secret-pw@127.0.0.1:${port}/%2f`,
  });
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(
    new RegExp(`note: RabbitMQ is not reachable at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${port}/`),
  );
  expect(r.stdout).toMatch(/starting the job directly/);
  expect(r.stdout).not.toContain('secret-pw');
  expect(r.stdout).toMatch(/^direct$/m);
  const d = await solstice(['enqueue', '--repo', repo.dir, '--direct']);
  expect(d.code).toBe(0);
  expect(d.stdout).not.toMatch(/queued request|note:/);
});

test('`solstice bridge` exits 69 when RabbitMQ is unreachable; `webhook serve` refuses to run without a secret', async () => {
  const port = await freePort();
  const b = await solstice(['bridge'], { AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}/%2f` });
  expect(b.code).toBe(69);
  expect(b.stderr).toMatch(
    new RegExp(`RabbitMQ is not reachable at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${port}`),
  );
  const w = await solstice(['webhook', 'serve', '--webhook-addr', `127.0.0.1:${await freePort()}`]);
  expect(w.code).toBe(2);
  expect(w.stderr).toMatch(/no webhook secret is configured/);
  expect(w.stderr).toMatch(/SOLSTICE_FORGEJO_WEBHOOK_SECRET/);
});

test('`solstice bridge` and `solstice webhook serve` run until SIGTERM and stop cleanly', async () => {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: stack.cfg.temporalAddress,
    SOLSTICE_TASK_QUEUE: stack.cfg.taskQueue,
    // The installation's database: without SOLSTICE_AMQP_PREFIX it names the queues.
    DATABASE_URL: database.url,
    AMQP_URL: vhost.url,
    LOG_LEVEL: 'warn',
    SOLSTICE_GITHUB_WEBHOOK_SECRET: SECRET,
    SOLSTICE_WEBHOOK_ADDR: `127.0.0.1:${await freePort()}`,
  };
  for (const args of [['bridge'], ['webhook', 'serve']]) {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor(() => /consuming|listening/.test(out), 30_000, `${args.join(' ')} to start`);
    const exit = exited(child);
    child.kill('SIGTERM');
    expect(await exit).toEqual({ code: 0, signal: null });
  }
});

test('a SIGTERM while `solstice bridge` is still starting stops it cleanly once started, instead of killing it', async () => {
  // Temporal's first connection is refused: that is when the bridge is mid-start (its signal
  // handling already in place), and the SDK's retry a second later is let through.
  const temporal = stack.cfg.temporalAddress.split(':');
  let attempts = 0;
  let child: ChildProcess | undefined;
  const gate = net.createServer((socket) => {
    if (attempts++ === 0) {
      child?.kill('SIGTERM');
      return void socket.resetAndDestroy();
    }
    const upstream = net.connect(Number(temporal[1]), temporal[0]);
    socket.on('error', () => upstream.destroy()).pipe(upstream);
    upstream.on('error', () => socket.destroy()).pipe(socket);
  });
  await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
  try {
    child = spawn(process.execPath, [CLI, 'bridge'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: `127.0.0.1:${(gate.address() as net.AddressInfo).port}`,
        SOLSTICE_TASK_QUEUE: stack.cfg.taskQueue,
        DATABASE_URL: database.url,
        AMQP_URL: vhost.url,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let logs = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (logs += b.toString()));
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(out).toMatch(/^bridge consuming /m);
    expect(logs).toMatch(/stop requested while starting/);
    expect(logs).toMatch(/drained; exiting/);
  } finally {
    child?.kill('SIGKILL');
    gate.close();
  }
});

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}
