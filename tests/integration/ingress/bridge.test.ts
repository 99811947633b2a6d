/**
 * Webhook → RabbitMQ → bridge → Temporal on real services: a RabbitMQ vhost of this file's
 * own and the run's Temporal dev server. Runs are started on a task queue no worker polls,
 * so a start is all that happens, and Temporal's visibility counts exactly how many runs exist.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { AmqpConnection, REASON_HEADER } from '../../../ingress/amqp';
import { loadConfig, type Config } from '../../../platform/config';
import { pipelineIdsForRequest } from '../../../ingress/pipeline-start';
import { encodeJobRequest, JOB_REQUEST_V1, newJobRequest } from '../../../model/job-request';
import { createLogger } from '../../../platform/logger';
import { freePort } from '../../../platform/net';
import { connectClient } from '../../../platform/temporal';
import { startBridge, type RunningBridge } from '../../../ingress/bridge';
import { startWebhookServer } from '../../../ingress/webhook-server';
import { createTestVhost, type TestVhost, TOPOLOGY } from '../../support/rabbitmq';
import { waitFor } from '../../support/wait';
import { forgejoPush, randomSha, send } from '../../support/webhooks';

const SECRET = 'bridge-test-secret';
const log = createLogger('test');
log.level = (process.env.TEST_LOG_LEVEL ?? 'silent') as typeof log.level;

let vhost: TestVhost;
let temporal: { client: Client; close(): Promise<void> };

beforeAll(async () => {
  const temporalAddress = process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS;
  if (!temporalAddress) throw new Error('SOLSTICE_TEST_TEMPORAL_ADDRESS is unset: run through jest');
  vhost = await createTestVhost();
  temporal = await connectClient({ temporalAddress, temporalNamespace: 'default' });
});

afterAll(async () => {
  await temporal?.close();
  await vhost?.drop();
});

beforeEach(async () => {
  // A test that failed half-way must not hand its messages to the next one.
  await vhost.drain(TOPOLOGY.queue);
  await vhost.drain(TOPOLOGY.dlq);
});

/** Settings of one test: its own task queue, so its runs can be counted apart. */
function config(prefetch = 64): Config {
  return loadConfig(
    {
      temporalAddress: process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS,
      taskQueue: `bridge-test-${randomUUID().slice(0, 8)}`,
      amqpUrl: vhost.url,
      amqpPrefetch: String(prefetch),
    },
    {},
  );
}

/** Workflow ids of every run on the task queue, from Temporal itself. */
async function runsOn(taskQueue: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of temporal.client.workflow.list({ query: `TaskQueue = "${taskQueue}"` }))
    ids.push(wf.workflowId);
  return ids.sort();
}

/** Waits until visibility shows `n` runs, then checks no more appear. */
async function expectRuns(taskQueue: string, expected: string[]): Promise<void> {
  const want = [...new Set(expected)].sort();
  await waitFor(async () => (await runsOn(taskQueue)).length >= want.length, 60_000, `${want.length} runs`);
  await new Promise((r) => setTimeout(r, 1000));
  expect(await runsOn(taskQueue)).toEqual(want);
}

async function connect(name: string): Promise<AmqpConnection> {
  return AmqpConnection.connect({
    topology: TOPOLOGY,
    url: vhost.url,
    log,
    name,
    reconnectDelayMs: 50,
    maxReconnectDelayMs: 500,
  });
}

async function withBridge<T>(
  cfg: Config,
  fn: (b: RunningBridge, amqp: AmqpConnection) => Promise<T>,
  client: Client = temporal.client,
): Promise<T> {
  const amqp = await connect('bridge');
  const bridge = startBridge(cfg, {
    amqp,
    temporal: client,
    log,
    retryDelayMs: 50,
    maxRetryDelayMs: 500,
    startTimeoutMs: 1000,
  });
  try {
    return await fn(bridge, amqp);
  } finally {
    await bridge.close();
    await amqp.close();
  }
}

function request(deliveryId = randomUUID()) {
  return newJobRequest({
    source: 'forgejo',
    repoUrl: 'http://forgejo.example/solstice/app.git',
    commitSha: randomSha(),
    ref: 'refs/heads/main',
    deliveryId,
  });
}

test('1,000 webhooks with 10% duplicate deliveries start exactly the 900 unique runs', async () => {
  const cfg = config();
  const ingressAmqp = await connect('webhook');
  const publisher = ingressAmqp.publisher();
  const server = await startWebhookServer({
    addr: `127.0.0.1:${await freePort()}`,
    bodyLimit: 1024 * 1024,
    secrets: { forgejo: SECRET },
    insecure: false,
    publisher,
    log,
  });
  try {
    await withBridge(cfg, async (bridge) => {
      const unique = Array.from({ length: 900 }, () => forgejoPush(SECRET));
      // A duplicate delivery is the same delivery again: same id, same signed body.
      const deliveries = [...unique, ...Array.from({ length: 100 }, (_, i) => unique[(i * 7) % 900])];
      deliveries.sort(() => Math.random() - 0.5);
      const statuses: number[] = [];
      const workflowIds = new Set<string>();
      let next = 0;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (next < deliveries.length) {
            const r = await send(server.url, deliveries[next++]);
            statuses.push(r.status);
            workflowIds.add(String(r.body.workflow_id));
          }
        }),
      );
      expect(statuses.filter((s) => s === 202)).toHaveLength(1000);
      expect(workflowIds.size).toBe(900);
      await waitFor(
        () => bridge.stats.started + bridge.stats.duplicates === 1000,
        120_000,
        'the bridge to handle 1,000 messages',
      );
      // The runs themselves are the property: exactly the 900 unique ones exist. The bridge's own
      // counters cannot tell "a duplicate delivery" from "my own earlier start, whose answer was
      // lost to a deadline on a loaded machine", so they only bound it.
      expect(bridge.stats.deadLettered).toBe(0);
      expect(bridge.stats.started).toBeLessThanOrEqual(900);
      await expectRuns(cfg.taskQueue, [...workflowIds]);
    });
    expect(await vhost.depth(TOPOLOGY.queue)).toBe(0);
    expect(await vhost.depth(TOPOLOGY.dlq)).toBe(0);
  } finally {
    await server.close();
    await publisher.close();
    await ingressAmqp.close();
  }
});

test('one captured signed delivery resent under 20 fresh delivery ids (Replay) starts exactly one pipeline', async () => {
  const cfg = config();
  const ingressAmqp = await connect('webhook');
  const publisher = ingressAmqp.publisher();
  const server = await startWebhookServer({
    addr: `127.0.0.1:${await freePort()}`,
    bodyLimit: 1024 * 1024,
    secrets: { forgejo: SECRET },
    insecure: false,
    publisher,
    log,
  });
  try {
    await withBridge(cfg, async (bridge) => {
      const captured = forgejoPush(SECRET);
      // Replay resends the same signed body under a new delivery id.
      const resends = Array.from({ length: 20 }, () => {
        const headers = {
          ...captured.headers,
          'x-forgejo-delivery': randomUUID(),
          'x-gitea-delivery': randomUUID(),
        };
        return { ...captured, headers };
      });
      const workflowIds = new Set<string>();
      for (const d of resends) {
        const r = await send(server.url, d);
        expect(r.status).toBe(202);
        workflowIds.add(String(r.body.workflow_id));
      }
      expect(workflowIds.size).toBe(1);
      await waitFor(
        () => bridge.stats.started + bridge.stats.duplicates >= 20,
        60_000,
        'the bridge to handle 20 messages',
      );
      await expectRuns(cfg.taskQueue, [...workflowIds]);
    });
  } finally {
    await server.close();
    await publisher.close();
    await ingressAmqp.close();
  }
});

test("losing the bridge's connection mid-stream, then restarting the bridge, loses and duplicates nothing", async () => {
  const cfg = config(16);
  const requests = Array.from({ length: 400 }, () => request());
  const expected = requests.map((r) => pipelineIdsForRequest(r).workflowId);
  const seen = new Set<string>();
  const producer = await connect('producer');
  const publisher = producer.publisher();
  try {
    const amqp1 = await connect('bridge-1');
    let reconnected = false;
    amqp1.onStateChange((up) => {
      if (up) reconnected = true;
    });
    const bridge1 = startBridge(cfg, {
      amqp: amqp1,
      temporal: temporal.client,
      log,
      onStarted: (e) => seen.add(e.workflowId),
    });
    // Publish while the bridge consumes, and cut its connection once 100 runs have started.
    const publishing = (async () => {
      for (const r of requests)
        await publisher.publish(encodeJobRequest(r), { headers: { schema_version: JOB_REQUEST_V1 } });
    })();
    await waitFor(() => seen.size >= 100, 60_000, '100 starts');
    amqp1.simulateConnectionLoss();
    await waitFor(() => reconnected, 30_000, 'the bridge to reconnect');
    await waitFor(() => seen.size >= 250, 60_000, '250 starts after reconnecting');
    // Stop the bridge abruptly (as a crash would: its connection goes first), start another.
    amqp1.simulateConnectionLoss();
    await amqp1.close();
    await bridge1.close();
    await publishing;
    await withBridge(cfg, async (bridge2) => {
      const before = seen.size;
      await waitFor(
        async () => bridge2.stats.started >= 400 - before && (await vhost.depth(TOPOLOGY.queue)) === 0,
        120_000,
        'the second bridge to drain the queue',
      );
      expect(bridge2.stats.deadLettered).toBe(0);
    });
    await expectRuns(cfg.taskQueue, expected);
    expect(await vhost.depth(TOPOLOGY.dlq)).toBe(0);
  } finally {
    await publisher.close();
    await producer.close();
  }
});

test('a message with a bad schema lands in the DLQ with the reason; the bridge goes on', async () => {
  const cfg = config();
  const producer = await connect('producer');
  const publisher = producer.publisher();
  const good = request();
  const bad: [string, Buffer, Record<string, unknown>, RegExp][] = [
    ['not JSON', Buffer.from('{"schema_version": "jobrequest.v1", '), {}, /not JSON/],
    [
      'missing fields',
      Buffer.from(JSON.stringify({ schema_version: 'jobrequest.v1', source: 'github' })),
      {},
      /request_id/,
    ],
    [
      'wrong version header',
      encodeJobRequest(request()),
      { schema_version: 'jobrequest.v2' },
      /jobrequest\.v2/,
    ],
    ['short sha', Buffer.from(JSON.stringify({ ...request(), commit_sha: 'abc123' })), {}, /commit_sha/],
  ];
  try {
    await withBridge(cfg, async (bridge) => {
      for (const [name, body, headers] of bad)
        await publisher.publish(body, { headers: { ...headers, 'x-test-case': name } });
      await publisher.publish(encodeJobRequest(good), { headers: { schema_version: JOB_REQUEST_V1 } });
      await waitFor(
        () => bridge.stats.started === 1 && bridge.stats.deadLettered === 4,
        30_000,
        'all five handled',
      );
    });
    const dead = await vhost.drain(TOPOLOGY.dlq);
    expect(dead).toHaveLength(4);
    for (const [name, body, , reason] of bad) {
      const m = dead.find((d) => d.properties.headers?.['x-test-case'] === name);
      expect(m?.content.equals(body)).toBe(true);
      expect(String(m?.properties.headers?.[REASON_HEADER])).toMatch(reason);
    }
    expect(await vhost.depth(TOPOLOGY.queue)).toBe(0);
    await expectRuns(cfg.taskQueue, [pipelineIdsForRequest(good).workflowId]);
  } finally {
    await publisher.close();
    await producer.close();
  }
});

test('Temporal unreachable: the start is retried and never dead-lettered; it starts once Temporal is back', async () => {
  const cfg = config();
  const producer = await connect('producer');
  const publisher = producer.publisher();
  const deadTemporal = Connection.lazy({ address: `127.0.0.1:${await freePort()}`, connectTimeout: '200ms' });
  const unreachable = new Client({ connection: deadTemporal, namespace: 'default' });
  const r = request();
  try {
    await withBridge(
      cfg,
      async (bridge) => {
        await publisher.publish(encodeJobRequest(r), { headers: { schema_version: JOB_REQUEST_V1 } });
        await waitFor(() => bridge.stats.retries >= 3, 60_000, 'three retries');
        expect(bridge.stats.deadLettered).toBe(0);
        expect(await vhost.depth(TOPOLOGY.dlq)).toBe(0);
      },
      unreachable,
    );
    // The unacked message went back to the queue when that bridge stopped.
    await withBridge(cfg, async (bridge) => {
      await waitFor(() => bridge.stats.started === 1, 30_000, 'the start');
    });
    await expectRuns(cfg.taskQueue, [pipelineIdsForRequest(r).workflowId]);
    expect(await vhost.depth(TOPOLOGY.dlq)).toBe(0);
  } finally {
    await deadTemporal.close().catch(() => undefined);
    await publisher.close();
    await producer.close();
  }
});
