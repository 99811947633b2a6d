/**
 * Traces and metrics of a real run, read back from a real OTLP receiver (Jaeger v2) and a
 * Prometheus scrape: `solstice up` runs as a process exporting to Jaeger, a signed Forgejo
 * push goes webhook → RabbitMQ → bridge → PipelineWorkflow → JobWorkflow → machine → runner
 * → log service, and one trace must lead from the webhook's span to the runner's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../../platform/config';
import { createDb, type Db } from '../../../storage/db';
import { freePort } from '../../../platform/net';
import { PipelineStore } from '../../../storage/pipeline-store';
import { CLI } from '../../support/cli';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { jobRepo } from '../../support/git-repo';
import { startJaeger, tag, type Jaeger, type JaegerSpan, type JaegerTrace } from '../../support/jaeger';
import { createTestVhost, TOPOLOGY, type TestVhost } from '../../support/rabbitmq';
import { gatePath, waitFor } from '../../support/wait';
import { fixture, forgejoDelivery, send } from '../../support/webhooks';

const SECRET = `webhook-secret-${randomBytes(6).toString('hex')}`;
// PostgreSQL trusts local connections, so this password is never checked: it is here to be
// looked for in the spans, given as a command-line flag.
const DB_PASSWORD = `db-pw-${randomBytes(6).toString('hex')}`;

let jaeger: Jaeger;
let vhost: TestVhost;
let database: TestDatabase;
let db: Db;
let tmp: string;
let up: ChildProcess;
let upOutput = '';
let webhookUrl: string;
let metricsUrl: string;

/** The run every test here looks at: its job id, repository, commit and runner token. */
let run: { jobId: string; repo: string; sha: string; token: string; logText: string };

beforeAll(async () => {
  jaeger = await startJaeger();
  vhost = await createTestVhost();
  database = await createTestDatabase();
  db = createDb(loadConfig({ databaseUrl: database.url }, {}));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-tracing-'));
  const id = randomBytes(4).toString('hex');
  const webhookAddr = `127.0.0.1:${await freePort()}`;
  const metricsAddr = `127.0.0.1:${await freePort()}`;
  webhookUrl = `http://${webhookAddr}`;
  metricsUrl = `http://${metricsAddr}/metrics`;
  const dbUrl = new URL(database.url);
  dbUrl.password = DB_PASSWORD;
  up = spawn(process.execPath, [CLI, 'up', '--database-url', dbUrl.toString()], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LOG_LEVEL: 'warn',
      TEMPORAL_ADDRESS: process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS,
      SOLSTICE_TASK_QUEUE: `tracing-${id}`,
      SOLSTICE_HOST_ID: `tracing-${id}`,
      SOLSTICE_STATE_DIR: tmp,
      SOLSTICE_WORKSPACE_ROOT: path.join(tmp, 'machines'),
      BLOB_FS_ROOT: path.join(tmp, 'blobs'),
      GRPC_ADDR: `127.0.0.1:${await freePort()}`,
      SOLSTICE_RUNNER_SERVE_ADDR: `127.0.0.1:${await freePort()}`,
      SOLSTICE_WEBHOOK_ADDR: webhookAddr,
      SOLSTICE_FORGEJO_WEBHOOK_SECRET: SECRET,
      // The pushed repository is a folder of this host (issue 21: refused unless allowed).
      SOLSTICE_WEBHOOK_LOCAL_REPOS: 'true',
      AMQP_URL: vhost.url,
      SOLSTICE_AMQP_PREFIX: TOPOLOGY.prefix,
      OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
      SOLSTICE_METRICS_ADDR: metricsAddr,
      SOLSTICE_JOB_TIMEOUT: '2m',
      SOLSTICE_BOOT_TIMEOUT: '60s',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  up.stdout?.on('data', (b: Buffer) => (upOutput += b.toString()));
  up.stderr?.on('data', (b: Buffer) => (upOutput += b.toString()));
  await waitFor(() => upOutput.includes('Solstice is up') || up.exitCode !== null, 90_000, '`solstice up`');
  if (up.exitCode !== null) throw new Error(`solstice up exited ${up.exitCode}:\n${upOutput}`);

  // The job waits at a gate until the test has read the runner's token from the machine's job
  // file, so the spans can be searched for it.
  const gate = gatePath();
  const logText = `traced-log-line-${randomBytes(6).toString('hex')}`;
  const repo = jobRepo(`echo ${logText}\nwhile [ ! -e ${gate} ]; do sleep 0.1; done`);
  const push = fixture('forgejo-push');
  push.after = repo.sha;
  (push.repository as Record<string, unknown>).clone_url = repo.dir;
  const r = await send(webhookUrl, forgejoDelivery('push', push, SECRET));
  expect(r.status).toBe(202);
  const pipelineId = String(r.body.pipeline_id);

  let jobFile: string | undefined;
  await waitFor(
    () => (jobFile = findFile(path.join(tmp, 'machines'), 'job.yaml')) !== undefined,
    90_000,
    'a machine',
  );
  const job = parseYaml(fs.readFileSync(jobFile as string, 'utf8')) as Record<string, string>;
  fs.writeFileSync(gate, '');

  const pipelines = new PipelineStore(db);
  await waitFor(
    async () => (await pipelines.getPipeline(pipelineId))?.state === 'success',
    120_000,
    'the pipeline to succeed',
  );
  run = { jobId: job.job_id, repo: repo.dir, sha: repo.sha, token: job.token, logText };
}, 300_000);

afterAll(async () => {
  if (up && up.exitCode === null) {
    const exited = new Promise((resolve) => up.once('exit', resolve));
    up.kill('SIGTERM');
    await exited;
  }
  await db?.$disconnect();
  await jaeger?.stop();
  await database?.drop();
  await vhost?.drop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function findFile(dir: string, name: string): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === name) return p;
    if (e.isDirectory()) {
      const found = findFile(p, name);
      if (found) return found;
    }
  }
  return undefined;
}

function serviceOf(t: JaegerTrace, s: JaegerSpan): string {
  return t.processes[s.processID]?.serviceName ?? '';
}

/** The span's ancestors, nearest first, following CHILD_OF references within the trace. */
function ancestors(t: JaegerTrace, s: JaegerSpan): JaegerSpan[] {
  const byId = new Map(t.spans.map((x) => [x.spanID, x]));
  const out: JaegerSpan[] = [];
  for (let cur: JaegerSpan | undefined = s; cur;) {
    const parent: JaegerSpan['references'][number] | undefined = cur.references.find(
      (r) => r.refType === 'CHILD_OF',
    );
    cur = parent ? byId.get(parent.spanID) : undefined;
    if (cur) out.push(cur);
  }
  return out;
}

test('one trace leads from the webhook span through queue, bridge, workflows and log service to the runner span', async () => {
  let trace: JaegerTrace | undefined;
  // Spans arrive in batches from several exporters (solstice up, the workflow sink, the
  // runner), workflow spans only once their workflow ended: wait until the runner's span has
  // its whole ancestry and the log service's last call is in.
  await waitFor(
    async () => {
      const traces = await jaeger.traces('solstice-runner', { 'solstice.job.id': run.jobId });
      trace = traces.find((t) => {
        const runner = t.spans.find((s) => s.operationName === 'runner job');
        const root = runner ? ancestors(t, runner).pop() : undefined;
        return (
          root?.operationName === 'webhook forgejo' &&
          t.spans.some((s) => s.operationName === 'log-service FinishJob')
        );
      });
      return trace !== undefined;
    },
    60_000,
    'a trace in Jaeger from the webhook span down to the runner span',
  );
  const t = trace as JaegerTrace;
  const runner = t.spans.find((s) => s.operationName === 'runner job') as JaegerSpan;
  const webhook = t.spans.find((s) => s.operationName === 'webhook forgejo') as JaegerSpan;
  expect(serviceOf(t, runner)).toBe('solstice-runner');
  expect(serviceOf(t, webhook)).toBe('solstice');
  expect(runner.traceID).toBe(webhook.traceID);

  // Not merely the same trace id: the runner's span descends from the webhook's, through each hop.
  const chain = ancestors(t, runner).map((s) => s.operationName);
  expect(chain[chain.length - 1]).toBe('webhook forgejo');
  expect(chain).toEqual(
    expect.arrayContaining([
      `publish ${TOPOLOGY.exchange}`,
      `process ${TOPOLOGY.queue}`,
      'StartWorkflow:PipelineWorkflow',
      'RunWorkflow:PipelineWorkflow',
      'StartChildWorkflow:JobWorkflow',
      'RunWorkflow:JobWorkflow',
      'StartActivity:provisionMachine',
      'RunActivity:provisionMachine',
    ]),
  );
  // The runner's gRPC calls carry its trace context: the log service's spans are its children.
  for (const method of ['StartJob', 'StreamLogs', 'FinishJob']) {
    const call = t.spans.find((s) => s.operationName === `log-service ${method}`);
    expect(call).toBeDefined();
    expect(ancestors(t, call as JaegerSpan)[0]?.spanID).toBe(runner.spanID);
    expect(tag(call as JaegerSpan, 'solstice.job.id')).toBe(run.jobId);
  }
  expect(
    t.spans.some((s) => s.operationName === 'runner step job.sh' || /^runner step/.test(s.operationName)),
  ).toBe(true);

  // Job id, repository and commit where they are known.
  expect(tag(runner, 'solstice.job.id')).toBe(run.jobId);
  expect(tag(runner, 'solstice.repo')).toBe(run.repo);
  expect(tag(runner, 'solstice.commit')).toBe(run.sha);
  expect(tag(webhook, 'solstice.repo')).toBe(run.repo);
  expect(tag(webhook, 'solstice.commit')).toBe(run.sha);
  expect(tag(webhook, 'solstice.webhook.outcome')).toBe('enqueued');
  const provision = t.spans.find((s) => s.operationName === 'RunActivity:provisionMachine') as JaegerSpan;
  expect(tag(provision, 'solstice.job.id')).toBe(run.jobId);

  // Nothing sensitive anywhere in the trace: not the runner's token, the webhook secret, a
  // password from the command line, nor the job's log text.
  const everything = JSON.stringify(t);
  expect(run.token.length).toBeGreaterThan(20);
  for (const secret of [run.token, SECRET, DB_PASSWORD, run.logText])
    expect(everything).not.toContain(secret);
});

test('the Prometheus endpoint reports jobs by state, queue wait, VM boot, log bytes and webhook outcomes', async () => {
  const res = await fetch(metricsUrl);
  expect(res.status).toBe(200);
  const text = await res.text();
  const sample = (re: RegExp): number => {
    const m = text.match(re);
    if (!m) throw new Error(`no sample matching ${re} in:\n${text}`);
    return Number(m[1]);
  };
  expect(sample(/^solstice_jobs_finished_total\{[^}]*state="success"[^}]*\} (\S+)$/m)).toBe(1);
  expect(
    sample(/^solstice_webhook_deliveries_total\{[^}]*forge="forgejo"[^}]*outcome="enqueued"[^}]*\} (\S+)$/m),
  ).toBe(1);
  expect(sample(/^solstice_job_queue_wait_seconds_count(?:\{[^}]*\})? (\S+)$/m)).toBe(1);
  expect(sample(/^solstice_vm_boot_seconds_count\{[^}]*provider="local"[^}]*\} (\S+)$/m)).toBe(1);
  // At least the echoed line and the runner's own lines.
  expect(sample(/^solstice_log_bytes_total(?:\{[^}]*\})? (\S+)$/m)).toBeGreaterThan(run.logText.length);

  // A delivery with a bad signature counts as unauthorized.
  const bad = forgejoDelivery('push', fixture('forgejo-push'), 'not-the-secret');
  expect((await send(webhookUrl, bad)).status).toBe(401);
  const after = await (await fetch(metricsUrl)).text();
  expect(after).toMatch(
    /^solstice_webhook_deliveries_total\{[^}]*forge="forgejo"[^}]*outcome="unauthorized"[^}]*\} 1$/m,
  );
});
