/**
 * Push → final commit status through the whole webhook path, against a real Gitea
 * (devstack/gitea.ts): git push → Gitea's webhook → ingress → RabbitMQ → bridge →
 * PipelineWorkflow → JobWorkflow (local provider) → the status Gitea shows. The clock is this
 * process's, from `git push` returning to the commit's status reading final on Gitea's API, so
 * the figure is what a person pushing would see (issue 20; Woodpecker's measured here: 21.5 s
 * p50 for a burst of 10 pushes at concurrency 1, load ~5).
 *
 *   npm run bench:forge -- [--single 5] [--burst 10] [--script-ms 500] [--poll-ms 100]
 *
 * Two runs: `--single` pushes one at a time (each waits for the last one's final status), which
 * gives the per-phase breakdown from the spans; then a `--burst` of pushes back to back, as
 * Woodpecker was measured, which gives push → final p50 and jobs per minute. Uses DATABASE_URL
 * if set (a fresh database next to it), else embedded PostgreSQL.
 */
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startGitea, type Gitea, type GiteaRepo } from '../devstack/gitea';
import { startStack, type Stack } from '../devstack/stack';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { freePort } from '../platform/net';
import { initTelemetry } from '../platform/telemetry';
import { benchStorage, freeStackAddresses, percentile, throwawayVhost } from './fixtures';
import { breakdown, PHASES, spansOfJob, type JobBreakdown } from './job-phases';
import { startSpanCollector, type CollectedSpan } from './span-collector';
import fs from 'node:fs';

const SECRET = 'bench-forge-secret';
const FINAL = new Set(['success', 'failure', 'error']);

const { values } = parseArgs({
  options: {
    single: { type: 'string', default: '5' },
    burst: { type: 'string', default: '10' },
    'script-ms': { type: 'string', default: '500' },
    'poll-ms': { type: 'string', default: '100' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(`npm run bench:forge -- [--single N] [--burst N] [--script-ms MS] [--poll-ms MS]

Push → final commit status through Gitea's webhooks and the whole stack (local provider).
  --single N     pushes one at a time, each after the last one's final status (default 5):
                 p50/p95 and the per-phase breakdown from the spans
  --burst N      pushes back to back, as Woodpecker was measured (default 10): p50 and jobs/min
  --script-ms MS how long each job's script sleeps (default 500)
  --poll-ms MS   how often Gitea's status API is read while waiting (default 100)`);
  process.exit(0);
}

interface Push {
  sha: string;
  pushedAt: number;
  finalAt?: number;
  state?: string;
}

/**
 * Pushes a new commit whose one job sleeps `scriptMs`; returns when `git push` has returned. The
 * workflow keeps older pipelines of the branch running (`cancel-superseded #false`), so a burst
 * runs every push, as Woodpecker did.
 */
async function push(gitea: Gitea, repo: GiteaRepo, n: number, scriptMs: number): Promise<Push> {
  const workflow = `cancel-superseded #false\njob "bench" {\n  step "sleep" run="sleep ${(scriptMs / 1000).toFixed(3)} # push ${n}"\n}\n`;
  const sha = await gitea.push(repo, { '.solstice/workflow.kdl': workflow }, { message: `bench push ${n}` });
  return { sha, pushedAt: Date.now() };
}

/** Until every status of the commit is final (at least one); the time Gitea first said so. */
async function waitFinal(gitea: Gitea, repo: GiteaRepo, p: Push, pollMs: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const latest = [...(await gitea.latestStatuses(repo, p.sha)).values()];
    if (latest.length > 0 && latest.every((s) => FINAL.has(s.state))) {
      p.finalAt = Date.now();
      p.state = latest.every((s) => s.state === 'success') ? 'success' : latest.map((s) => s.state).join(',');
      return;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`commit ${p.sha.slice(0, 12)} had no final status ${timeoutMs / 1000} s after its push`);
}

async function jobIdsOf(stack: Stack, sha: string): Promise<string[]> {
  const pipelines = await stack.jobs.db.pipeline.findMany({
    where: { commitSha: sha },
    select: { jobs: { select: { jobId: true } } },
  });
  return pipelines.flatMap((p) => p.jobs.flatMap((j) => (j.jobId ? [j.jobId] : [])));
}

/** The webhook delivery's span: in the job's trace when the context crossed RabbitMQ, else the first after the push. */
function webhookSpan(all: readonly CollectedSpan[], jobSpans: readonly CollectedSpan[], pushedAt: number) {
  const traces = new Set(jobSpans.map((s) => s.traceId));
  // Gitea's deliveries are handled as Forgejo's (the same payloads and signature).
  const hooks = all.filter((s) => s.name.startsWith('webhook ')).sort((a, b) => a.startMs - b.startMs);
  return hooks.find((s) => traces.has(s.traceId)) ?? hooks.find((s) => s.startMs >= pushedAt);
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const fmt = (xs: number[], p: number) => (xs.length ? percentile(xs, p).toFixed(0).padStart(6) : '     -');
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

/** What main started, stopped in reverse on the way out, also when it fails (a Gitea left running would outlive the bench). */
const cleanups: (() => Promise<unknown> | unknown)[] = [];
async function cleanUp(): Promise<void> {
  for (const c of cleanups.splice(0).reverse())
    await Promise.resolve()
      .then(c)
      .catch(() => undefined);
}

async function main(): Promise<void> {
  const single = Number(values.single);
  const burst = Number(values.burst);
  const scriptMs = Number(values['script-ms']);
  const pollMs = Number(values['poll-ms']);
  process.env.LOG_LEVEL ??= 'warn';

  console.error('bench:forge: starting Gitea (built on first use) and the stack');
  const gitea = await startGitea();
  cleanups.push(() => gitea.stop());
  const vhost = throwawayVhost();
  if (vhost) cleanups.push(() => vhost.drop());
  const { stateDir, database } = await benchStorage();
  cleanups.push(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  if (database) cleanups.push(() => database.drop());
  const collector = await startSpanCollector();
  cleanups.push(() => collector.close());
  const webhookAddr = `127.0.0.1:${await freePort()}`;
  const id = randomBytes(4).toString('hex');
  const cfg = loadConfig({
    stateDir,
    databaseUrl: database?.url,
    ...(await freeStackAddresses()),
    ...(process.env.TEMPORAL_ADDRESS ? { temporalAddress: process.env.TEMPORAL_ADDRESS } : {}),
    workspaceRoot: path.join(stateDir, 'machines'),
    taskQueue: `bench-forge-${id}`,
    hostId: `bench-forge-${id}`,
    webhookAddr,
    ...(vhost ? { amqpUrl: vhost.url } : {}),
    forgejoWebhookSecret: SECRET,
    forgejoToken: gitea.admin.token,
    publicUrl: 'http://ci.example',
    otlpEndpoint: collector.endpoint,
  });
  const telemetry = initTelemetry('solstice', cfg);
  cleanups.push(() => telemetry.shutdown());
  const stack = await startStack(cfg, createLogger('bench'));
  cleanups.push(() => stack.stop());
  const repo = await gitea.createRepo(`bench-${id}`);
  await gitea.addWebhook(repo, `http://${webhookAddr}/webhooks/gitea`, SECRET);

  const timeoutMs = 5 * 60_000;
  let n = 0;
  // A first push warms what the first job pays once (the runner download, the repository's first clone).
  const warm = await push(gitea, repo, n++, scriptMs);
  await waitFinal(gitea, repo, warm, pollMs, timeoutMs);

  console.error(`bench:forge: ${single} single pushes`);
  const loadSingle = load();
  const singles: Push[] = [];
  for (let i = 0; i < single; i++) {
    const p = await push(gitea, repo, n++, scriptMs);
    await waitFinal(gitea, repo, p, pollMs, timeoutMs);
    singles.push(p);
  }

  console.error(`bench:forge: a burst of ${burst} pushes`);
  const loadBurst = load();
  const bursts: Push[] = [];
  for (let i = 0; i < burst; i++) bursts.push(await push(gitea, repo, n++, scriptMs));
  await Promise.all(bursts.map((p) => waitFinal(gitea, repo, p, pollMs, timeoutMs)));
  const burstMinutes = (Math.max(...bursts.map((p) => p.finalAt!)) - bursts[0].pushedAt) / 60_000;
  const loadAfter = load();

  // The breakdown of the single pushes, from their traces.
  const jobsOf = new Map<string, string[]>();
  for (const p of singles) jobsOf.set(p.sha, await jobIdsOf(stack, p.sha));
  // The stack, then the telemetry (flushing the worker's and log service's spans), then the receiver.
  for (const c of cleanups.splice(-3).reverse()) await c();

  const per: { b: JobBreakdown; delivery: number; ingress: number; status: number }[] = [];
  let unexplained = 0;
  for (const p of singles) {
    const jobId = jobsOf.get(p.sha)?.[0];
    try {
      if (!jobId) throw new Error(`no job recorded for ${p.sha.slice(0, 12)}`);
      const spans = spansOfJob(collector.spans, jobId);
      const hook = webhookSpan(collector.spans, spans, p.pushedAt);
      if (!hook) throw new Error('no webhook span after the push');
      const b = breakdown(spans, hook.endMs);
      per.push({
        b,
        delivery: hook.startMs - p.pushedAt,
        ingress: hook.endMs - hook.startMs,
        status: p.finalAt! - (hook.endMs + b.totalMs),
      });
    } catch (err) {
      unexplained += 1;
      if (unexplained === 1) console.error(`push ${p.sha.slice(0, 12)}: ${(err as Error).message}`);
    }
  }

  const e2e = (ps: Push[]) => sorted(ps.map((p) => p.finalAt! - p.pushedAt));
  const failed = [...singles, ...bursts].filter((p) => p.state !== 'success').length;
  console.log(
    `\nSolstice through Gitea's webhooks, local provider, ${os.cpus().length} CPUs, script ${scriptMs} ms` +
      `; ${failed} pushes not success` +
      (unexplained ? `; ${unexplained} single pushes without a complete trace` : ''),
  );
  console.log(`load average: before singles ${loadSingle}, before burst ${loadBurst}, after ${loadAfter}\n`);
  console.log(`| single push, phase (ms)               |    p50 |    p95 |`);
  console.log(`|---------------------------------------|--------|--------|`);
  const row = (name: string, xs: number[]) =>
    console.log(`| ${name.padEnd(37)} | ${fmt(xs, 50)} | ${fmt(xs, 95)} |`);
  row('push → webhook delivered (Gitea)', sorted(per.map((x) => x.delivery)));
  row('ingress (verify, publish, reply)', sorted(per.map((x) => x.ingress)));
  for (const phase of PHASES) {
    const name = phase === 'workflow start' ? 'queue, bridge, plan, job start' : phase;
    const xs = sorted(per.map((x) => x.b.phases[phase]).filter((x): x is number => x !== undefined));
    if (xs.length > 0) row(name, xs);
  }
  row('report → status read on Gitea', sorted(per.map((x) => x.status)));
  row('push → final status', e2e(singles));
  console.log(
    `\nburst of ${burst}: push → final status p50 ${fmt(e2e(bursts), 50).trim()} ms, p95 ${fmt(e2e(bursts), 95).trim()} ms; ` +
      `${(burst / burstMinutes).toFixed(1)} jobs/min (Woodpecker here: 21.5 s p50, 60.7 jobs/min)\n`,
  );
}

main()
  .finally(cleanUp)
  .then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
