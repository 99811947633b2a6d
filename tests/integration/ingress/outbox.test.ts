/**
 * The webhook outbox on a real RabbitMQ (through a TCP proxy the test can take down) and a real
 * PostgreSQL: two ingress replicas accept 20 pushes while the broker is down, and once it is back
 * the 20 requests reach the queue once each, in the order they were accepted. With neither the
 * broker nor the database up, the answer is 503.
 */
import { AmqpConnection } from '../../../ingress/amqp';
import { createOutbox, type Outbox } from '../../../ingress/outbox';
import { startWebhookServer, type RunningWebhookServer } from '../../../ingress/webhook-server';
import { parseJobRequest } from '../../../model/job-request';
import { createLogger } from '../../../platform/logger';
import { freePort } from '../../../platform/net';
import { createDb, type Db } from '../../../storage/db';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { createTestVhost, TOPOLOGY, type TestVhost } from '../../support/rabbitmq';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';
import { waitFor } from '../../support/wait';
import { forgejoPush, randomSha, send } from '../../support/webhooks';

const SECRET = 'outbox-secret';
const log = createLogger('test');
log.level = 'silent';

let vhost: TestVhost;
let database: TestDatabase;
let proxy: TcpProxy;
const closers: (() => Promise<void>)[] = [];

interface Replica {
  server: RunningWebhookServer;
  amqp: AmqpConnection;
  outbox: Outbox;
}

async function replica(db: Db): Promise<Replica> {
  const amqp = await AmqpConnection.connect(
    { url: vhost.url.replace('127.0.0.1:5672', proxy.address), log, name: 'outbox test', topology: TOPOLOGY },
    { waitForFirst: true },
  );
  const publisher = amqp.publisher();
  const outbox = createOutbox(db, publisher, log);
  const server = await startWebhookServer({
    addr: `127.0.0.1:${await freePort()}`,
    bodyLimit: 256 * 1024,
    secrets: { forgejo: SECRET },
    insecure: false,
    publisher,
    outbox,
    log,
    brokerUp: () => amqp.connected,
  });
  closers.push(async () => {
    await server.close();
    await outbox.close();
    await publisher.close();
    await amqp.close();
  });
  return { server, amqp, outbox };
}

beforeAll(async () => {
  vhost = await createTestVhost();
  database = await createTestDatabase();
  proxy = await startTcpProxy(() => ({ host: '127.0.0.1', port: 5672 }));
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await proxy?.close();
  await database?.drop();
  await vhost?.drop();
});

test('20 pushes while RabbitMQ is down are kept, then published once each, in order, by two replicas', async () => {
  expect(vhost.url).toContain('127.0.0.1:5672');
  const dbA = createDb({
    databaseUrl: database.url,
    dbPoolMaxSize: 4,
    dbPoolTimeoutMs: 10_000,
    embeddedPgPort: 0,
  });
  const dbB = createDb({
    databaseUrl: database.url,
    dbPoolMaxSize: 4,
    dbPoolTimeoutMs: 10_000,
    embeddedPgPort: 0,
  });
  closers.push(
    () => dbA.$disconnect(),
    () => dbB.$disconnect(),
  );
  const a = await replica(dbA);
  const b = await replica(dbB);

  proxy.block();
  await waitFor(() => !a.amqp.connected && !b.amqp.connected, 30_000, 'both replicas to lose the broker');

  const shas: string[] = [];
  for (let i = 0; i < 20; i++) {
    const sha = randomSha();
    shas.push(sha);
    const res = await send((i % 2 === 0 ? a : b).server.url, forgejoPush(SECRET, { sha }));
    expect(res.status).toBe(202);
    expect((res.body as { queued: string }).queued).toBe('outbox');
  }
  expect(await dbA.webhookOutbox.count()).toBe(20);

  proxy.unblock();
  await waitFor(async () => (await dbA.webhookOutbox.count()) === 0, 90_000, 'the outbox to drain');
  await waitFor(async () => (await vhost.depth(TOPOLOGY.queue)) >= 20, 30_000, '20 messages in the queue');
  const msgs = await vhost.drain(TOPOLOGY.queue);
  const requests = msgs.map((m) => {
    const r = parseJobRequest(m.content, m.properties.headers ?? {});
    if (!r.ok) throw new Error(r.reason);
    expect(m.properties.messageId).toBe(r.request.request_id);
    return r.request;
  });
  expect(requests.map((r) => r.commit_sha)).toEqual(shas);
  expect(new Set(requests.map((r) => r.request_id)).size).toBe(20);

  // With the broker back and the outbox empty, a delivery goes straight to the broker again.
  const res = await send(a.server.url, forgejoPush(SECRET));
  expect(res.status).toBe(202);
  expect((res.body as { queued: string }).queued).toBe('broker');
  await vhost.drain(TOPOLOGY.queue);
});

test('neither the broker nor the database up → 503, and the answer says the forge will not retry', async () => {
  const deadDb = createDb({
    databaseUrl: `postgresql://postgres@127.0.0.1:${await freePort()}/none`,
    dbPoolMaxSize: 1,
    dbPoolTimeoutMs: 2_000,
    embeddedPgPort: 0,
  });
  closers.push(() => deadDb.$disconnect());
  const r = await replica(deadDb);
  proxy.block();
  try {
    await waitFor(() => !r.amqp.connected, 30_000, 'the replica to lose the broker');
    const res = await send(r.server.url, forgejoPush(SECRET));
    expect(res.status).toBe(503);
    expect((res.body as { error: string }).error).toMatch(
      /will not deliver this again.*outbox \(PostgreSQL\) failed too/,
    );
  } finally {
    proxy.unblock();
  }
});
