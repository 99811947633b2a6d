/**
 * Webhook → workflow-started latency and webhook throughput, on real services: the webhook
 * ingress (fastify), RabbitMQ (publisher confirms) and the bridge starting JobWorkflows on a
 * Temporal dev server. Runs are started on a task queue no worker polls, so the figures are
 * those of the ingest path alone (a job's own run time is bench/jobs.ts's business).
 *
 *   npm run build && node dist/bench/webhooks.js [--rates 50,100,200,400,800] [--seconds 10]
 *                                                [--burst 2000] [--concurrency 64]
 *                                                [--temporal dev,cluster,cluster-split]
 *
 * For each target rate, signed Forgejo push deliveries (10% of them repeated deliveries) are
 * sent open-loop for --seconds; latency is from sending the request to the bridge having
 * Temporal's answer for that delivery. A rate counts as sustained when the achieved rate is
 * within 5% of the target, nothing failed and p99 stays under 1 s (no backlog building up).
 * Then a closed-loop burst measures the ceiling.
 *
 * RabbitMQ: a throwaway vhost made with rabbitmqctl (as root), else AMQP_URL as is (the bench
 * then shares solstice.jobs.v1 with whatever else uses that vhost). Temporal: TEMPORAL_ADDRESS
 * if a server listens there, else a dev server on free ports; with --temporal, each one listed in
 * turn (bench/temporal-backends.ts), then a table of them side by side.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { AmqpConnection, topologyFor } from '../ingress/amqp';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { freePort, isListening, splitHostPort } from '../platform/net';
import { connectClient } from '../platform/temporal';
import { startDevServer } from '../devstack/temporal-dev-server';
import { startBridge } from '../ingress/bridge';
import { parseTemporalFlag, startBenchTemporal, type BenchTemporal } from './temporal-backends';
import { startWebhookServer } from '../ingress/webhook-server';
import { throwawayVhost } from './fixtures';

const SECRET = 'bench-secret';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

interface Delivery {
  id: string;
  headers: Record<string, string>;
  body: Buffer;
}

function push(repo: string): Delivery {
  const id = randomUUID();
  const body = Buffer.from(
    JSON.stringify({
      ref: 'refs/heads/main',
      before: '0'.repeat(39) + '1',
      after: randomBytes(20).toString('hex'),
      commits: [],
      total_commits: 1,
      repository: {
        id: 1,
        name: 'bench',
        full_name: `solstice/${repo}`,
        clone_url: `http://forge.invalid/solstice/${repo}.git`,
      },
      pusher: { id: 1, login: 'bench' },
      sender: { id: 1, login: 'bench' },
    }),
  );
  const sig = createHmac('sha256', SECRET).update(body).digest('hex');
  return {
    id,
    body,
    headers: {
      'content-type': 'application/json',
      'x-forgejo-event': 'push',
      'x-forgejo-delivery': id,
      'x-forgejo-signature': sig,
    },
  };
}

const OPTIONS = {
  rates: { type: 'string', default: '50,100,200,400,800' },
  seconds: { type: 'string', default: '10' },
  burst: { type: 'string', default: '2000' },
  concurrency: { type: 'string', default: '64' },
  prefetch: { type: 'string', default: '64' },
  temporal: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** The figures the side-by-side table compares. */
interface Summary {
  sustained: number;
  burstPerSecond: number;
  burstP50: number;
  burstP99: number;
}

/** One run of the bench against `temporalAddress` (else TEMPORAL_ADDRESS if listening, else a dev server). */
async function runBench(values: Values, temporalAddress?: string): Promise<Summary> {
  const rates = values.rates.split(',').map(Number);
  const seconds = Number(values.seconds);
  const log = createLogger('bench');
  log.level = 'error';
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    const base = loadConfig();
    if (!temporalAddress) {
      temporalAddress = base.temporalAddress;
      const t = splitHostPort(temporalAddress);
      if (!(await isListening(t.host, t.port))) {
        const dev = await startDevServer({ port: await freePort(), uiPort: await freePort() });
        cleanups.push(dev.stop);
        temporalAddress = dev.address;
      }
    }
    const vhost = throwawayVhost();
    if (vhost) cleanups.push(vhost.drop);
    const cfg = loadConfig({
      temporalAddress,
      amqpUrl: vhost?.url ?? base.amqpUrl,
      taskQueue: `bench-webhooks-${randomBytes(4).toString('hex')}`,
      amqpPrefetch: values.prefetch,
    });
    const temporal = await connectClient(cfg);
    cleanups.push(temporal.close);
    // Its own names: a bench run never mixes with an installation on the same broker.
    const topology = topologyFor(`solstice.bench-${randomBytes(4).toString('hex')}`);
    const bridgeAmqp = await AmqpConnection.connect({
      url: cfg.amqpUrl,
      log,
      name: 'bench bridge',
      topology,
    });
    cleanups.push(() => bridgeAmqp.close());
    const ingressAmqp = await AmqpConnection.connect({
      url: cfg.amqpUrl,
      log,
      name: 'bench ingress',
      topology,
    });
    cleanups.push(() => ingressAmqp.close());
    const publisher = ingressAmqp.publisher();

    // delivery id → send time; resolved by the bridge when Temporal answered its start.
    // Matched through the run's workflow id (the webhook's reply names it): the bridge may have
    // started the run before the reply reaches us.
    const sentAt = new Map<string, number>();
    const workflowOf = new Map<string, string>();
    const startedAt = new Map<string, number>();
    const latenciesOf = (ds: Delivery[]) =>
      ds.flatMap((d) => {
        const t0 = sentAt.get(d.id);
        const t1 = startedAt.get(workflowOf.get(d.id) ?? '');
        return t0 !== undefined && t1 !== undefined ? [t1 - t0] : [];
      });
    const bridge = startBridge(cfg, {
      amqp: bridgeAmqp,
      temporal: temporal.client,
      log,
      onStarted: (e) => {
        if (e.started && !startedAt.has(e.workflowId)) startedAt.set(e.workflowId, performance.now());
      },
    });
    cleanups.push(bridge.close);
    const server = await startWebhookServer({
      addr: `127.0.0.1:${await freePort()}`,
      bodyLimit: 1024 * 1024,
      secrets: { forgejo: SECRET },
      insecure: false,
      publisher,
      log,
    });
    cleanups.push(server.close);
    const url = `${server.url}/webhooks/forgejo`;

    let failed = 0;
    const sendOne = async (d: Delivery, record: boolean) => {
      if (record && !sentAt.has(d.id)) sentAt.set(d.id, performance.now());
      const res = await fetch(url, { method: 'POST', headers: d.headers, body: d.body });
      const reply = (await res.json().catch(() => ({}))) as { workflow_id?: string };
      if (record && reply.workflow_id) workflowOf.set(d.id, reply.workflow_id);
      if (res.status !== 202) failed += 1;
    };
    const settle = async (expected: number) => {
      const deadline = Date.now() + 120_000;
      while (bridge.stats.started + bridge.stats.duplicates < expected && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
    };

    // Warm-up: connections, JIT, Temporal's first starts.
    await Promise.all(Array.from({ length: 50 }, () => sendOne(push('warmup'), false)));
    await settle(50);

    const rows: string[] = [];
    let sustained = 0;
    let handled = bridge.stats.started + bridge.stats.duplicates;
    for (const rate of rates) {
      failed = 0;
      const total = Math.round(rate * seconds);
      const uniques: Delivery[] = [];
      const seen = new Set<string>();
      const inflight: Promise<void>[] = [];
      const start = performance.now();
      for (let i = 0; i < total; i++) {
        const due = start + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        // Every tenth delivery repeats an earlier one, as forges do on redelivery.
        const d =
          i % 10 === 9 && uniques.length > 0
            ? uniques[Math.floor(Math.random() * uniques.length)]
            : push('bench');
        if (!seen.has(d.id)) {
          seen.add(d.id);
          uniques.push(d);
        }
        inflight.push(sendOne(d, true));
      }
      await Promise.all(inflight);
      const sendSeconds = (performance.now() - start) / 1000;
      handled += total;
      await settle(handled);
      const achieved = total / sendSeconds;
      const xs = latenciesOf(uniques).sort((a, b) => a - b);
      // Sustained: every delivery accepted and started, and no backlog building up.
      const ok =
        failed === 0 && achieved >= rate * 0.95 && xs.length === uniques.length && percentile(xs, 99) < 1000;
      if (ok) sustained = Math.max(sustained, rate);
      rows.push(
        [
          String(rate).padStart(8),
          achieved.toFixed(0).padStart(10),
          String(total).padStart(6),
          String(uniques.length).padStart(6),
          ...[50, 95, 99].map((p) => percentile(xs, p).toFixed(1).padStart(7)),
          String(failed).padStart(6),
          (ok ? 'yes' : 'no').padEnd(9),
        ].join(' | '),
      );
    }

    // Closed loop: as fast as `concurrency` senders can go.
    const burst = Number(values.burst);
    failed = 0;
    let next = 0;
    const burstSent: Delivery[] = [];
    const burstStart = performance.now();
    await Promise.all(
      Array.from({ length: Number(values.concurrency) }, async () => {
        while (next < burst) {
          next += 1;
          const d = push('burst');
          burstSent.push(d);
          await sendOne(d, true);
        }
      }),
    );
    handled += burst;
    await settle(handled);
    const burstSeconds = (performance.now() - burstStart) / 1000;
    const bxs = latenciesOf(burstSent).sort((a, b) => a - b);

    process.stdout.write(
      `\nWebhook → workflow started (ingress + RabbitMQ confirm + bridge + Temporal start), ${seconds}s per rate, 10% repeated deliveries\n\n`,
    );
    process.stdout.write(
      '| target/s | achieved/s |   sent | unique |  p50 ms |  p95 ms |  p99 ms | failed | sustained |\n',
    );
    process.stdout.write(
      '| -------: | ---------: | -----: | -----: | ------: | ------: | ------: | -----: | --------- |\n',
    );
    for (const r of rows) process.stdout.write(`| ${r} |\n`);
    process.stdout.write(
      `\nHighest sustained rate tried: ${sustained || 'none'} webhooks/s.\n` +
        `Burst of ${burst} (concurrency ${values.concurrency}): ${(burst / burstSeconds).toFixed(0)} webhooks/s end to end, ` +
        `p50 ${percentile(bxs, 50).toFixed(1)} ms, p99 ${percentile(bxs, 99).toFixed(1)} ms, failed ${failed}.\n` +
        `Bridge totals: ${JSON.stringify(bridge.stats)}\n`,
    );
    return {
      sustained,
      burstPerSecond: burst / burstSeconds,
      burstP50: percentile(bxs, 50),
      burstP99: percentile(bxs, 99),
    };
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: OPTIONS });
  if (!values.temporal) {
    await runBench(values);
    return;
  }
  const results: [BenchTemporal, Summary][] = [];
  for (const kind of parseTemporalFlag(values.temporal)) {
    process.stdout.write(`\n## Temporal: ${kind}\n`);
    const server = await startBenchTemporal(kind);
    try {
      results.push([kind, await runBench(values, server.address)]);
    } finally {
      await server.stop();
    }
  }
  process.stdout.write(
    '\n## Side by side\n\n| Temporal | sustained webhooks/s | burst webhooks/s | burst p50 ms | burst p99 ms |\n' +
      '| -------- | -------------------: | ---------------: | -----------: | -----------: |\n',
  );
  for (const [kind, r] of results)
    process.stdout.write(
      `| ${kind} | ${r.sustained || 'none'} | ${r.burstPerSecond.toFixed(0)} | ${r.burstP50.toFixed(1)} | ${r.burstP99.toFixed(1)} |\n`,
    );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
