/**
 * The webhook ingress on a real RabbitMQ (a vhost of its own): real forge payloads, signed
 * here as the forge would, are queued as valid JobRequest v1 messages; every kind of bad
 * input gets its status code and queues nothing; a broker that is down answers 503.
 */
import { AmqpConnection } from '../../../ingress/amqp';
import { freePort } from '../../../platform/net';
import { createLogger } from '../../../platform/logger';
import { parseJobRequest } from '../../../model/job-request';
import { startWebhookServer, type RunningWebhookServer } from '../../../ingress/webhook-server';
import { createTestVhost, type TestVhost, TOPOLOGY } from '../../support/rabbitmq';
import {
  fixture,
  forgejoDelivery,
  forgejoPush,
  giteaDelivery,
  githubDelivery,
  hmacHex,
  randomSha,
  send,
  type Delivery,
} from '../../support/webhooks';

const SECRET = 'webhook-test-secret';
const BODY_LIMIT = 256 * 1024;
const log = createLogger('test');
log.level = 'silent';

let vhost: TestVhost;
let amqp: AmqpConnection;
let server: RunningWebhookServer;

beforeAll(async () => {
  vhost = await createTestVhost();
  amqp = await AmqpConnection.connect({ topology: TOPOLOGY, url: vhost.url, log, name: 'webhook test' });
  server = await startWebhookServer({
    addr: `127.0.0.1:${await freePort()}`,
    bodyLimit: BODY_LIMIT,
    secrets: { forgejo: SECRET, github: SECRET },
    insecure: false,
    publisher: amqp.publisher(),
    log,
    brokerUp: () => amqp.connected,
  });
});

afterAll(async () => {
  await server?.close();
  await amqp?.close();
  await vhost?.drop();
});

beforeEach(async () => {
  await vhost.drain(TOPOLOGY.queue);
});

async function queued() {
  const msgs = await vhost.drain(TOPOLOGY.queue);
  return msgs.map((m) => {
    expect(m.properties.deliveryMode).toBe(2); // persistent
    expect(m.properties.contentType).toBe('application/json');
    expect(m.properties.headers?.schema_version).toBe('jobrequest.v1');
    const r = parseJobRequest(m.content, m.properties.headers ?? {});
    if (!r.ok) throw new Error(`queued an invalid request: ${r.reason}`);
    return r.request;
  });
}

test('Forgejo push → 202 after the broker confirmed, and a valid JobRequest v1 is queued', async () => {
  const sha = randomSha();
  const d = forgejoPush(SECRET, { sha, deliveryId: 'f6266f16-1bf3-46a5-9ea4-602e06ead473' });
  const r = await send(server.url, d);
  expect(r.status).toBe(202);
  // The run is named by the event (repo, event, ref, commit), not by the delivery.
  expect(r.body.workflow_id).toMatch(
    new RegExp(`^pipeline/app/${sha.slice(0, 12)}/forgejo-[0-9a-f]{20}-w\\d+$`),
  );
  expect(r.body.queued).toBe('broker');
  expect(r.body.pipeline_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const [req, ...rest] = await queued();
  expect(rest).toEqual([]);
  expect(req).toMatchObject({
    source: 'forgejo',
    repo_url: 'http://forgejo.example/solstice/app.git',
    commit_sha: sha,
    ref: 'refs/heads/main',
    delivery_id: 'f6266f16-1bf3-46a5-9ea4-602e06ead473',
    event: 'push',
  });
});

test('Gitea pull_request "synchronized" (Gitea headers only) queues the head commit of refs/pull/N/head', async () => {
  const p = fixture('gitea-pull-request-synchronized');
  const d = giteaDelivery('pull_request', 'pull_request_sync', p, SECRET);
  const r = await send(server.url, d);
  expect(r.status).toBe(202);
  const [req] = await queued();
  expect(req).toMatchObject({
    source: 'forgejo',
    repo_url: 'http://gitea.example/solstice/app.git',
    commit_sha: '9f3b5a0c2d1e4f6a8b7c9d0e1f2a3b4c5d6e7f80',
    ref: 'refs/pull/4/head',
    event: 'pull_request',
    action: 'synchronized',
    pr_number: 4,
  });
});

test('GitHub push and pull_request opened are queued; ping answers pong and queues nothing', async () => {
  expect((await send(server.url, githubDelivery('push', fixture('github-push'), SECRET))).status).toBe(202);
  expect(
    (await send(server.url, githubDelivery('pull_request', fixture('github-pull-request-opened'), SECRET)))
      .status,
  ).toBe(202);
  const ping = await send(server.url, githubDelivery('ping', fixture('github-ping'), SECRET));
  expect(ping).toEqual({ status: 200, body: { status: 'pong' } });
  const reqs = await queued();
  expect(reqs.map((q) => [q.source, q.commit_sha, q.ref])).toEqual([
    ['github', '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c', 'refs/heads/main'],
    ['github', 'ec26c3e57ca3a959ca5aad62de7213c562f8c821', 'refs/pull/2/head'],
  ]);
});

describe('bad input gets the right status and queues nothing', () => {
  const push = () => forgejoPush(SECRET);
  const withHeaders = (d: Delivery, h: Record<string, string | undefined>): Delivery => {
    const headers = { ...d.headers };
    for (const [k, v] of Object.entries(h)) {
      if (v === undefined) delete headers[k];
      else headers[k] = v;
    }
    return { ...d, headers };
  };
  const cases: [string, () => Delivery, number, RegExp][] = [
    [
      'wrong signature',
      () => withHeaders(push(), { 'x-forgejo-signature': hmacHex('not-the-secret', push().body) }),
      401,
      /does not match/,
    ],
    [
      'no signature',
      () => withHeaders(push(), { 'x-forgejo-signature': undefined, 'x-gitea-signature': undefined }),
      401,
      /missing signature/,
    ],
    ['malformed signature', () => withHeaders(push(), { 'x-forgejo-signature': 'sha256=zz' }), 401, /64 hex/],
    [
      'GitHub signature without the sha256= prefix',
      () => {
        const d = githubDelivery('push', fixture('github-push'), SECRET);
        return withHeaders(d, { 'x-hub-signature-256': hmacHex(SECRET, d.body) });
      },
      401,
      /sha256=/,
    ],
    [
      'truncated body (signature of the whole body)',
      () => {
        const d = push();
        return { ...d, body: d.body.subarray(0, d.body.length - 20) };
      },
      401,
      /does not match/,
    ],
    [
      'truncated body, signed as sent (malformed JSON)',
      () => {
        const d = push();
        const body = d.body.subarray(0, d.body.length - 20);
        return withHeaders({ ...d, body }, { 'x-forgejo-signature': hmacHex(SECRET, body) });
      },
      400,
      /not valid JSON/,
    ],
    [
      'huge body',
      () => {
        const p = fixture('forgejo-push');
        p.padding = 'x'.repeat(BODY_LIMIT + 1);
        return forgejoDelivery('push', p, SECRET);
      },
      413,
      /larger than/,
    ],
    [
      'wrong content type (form-encoded)',
      () => {
        const d = push();
        const body = Buffer.from(`payload=${encodeURIComponent(d.body.toString())}`);
        return withHeaders(
          { ...d, body },
          {
            'content-type': 'application/x-www-form-urlencoded',
            'x-forgejo-signature': hmacHex(SECRET, body),
          },
        );
      },
      415,
      /application\/json/,
    ],
    ['no content type', () => withHeaders(push(), { 'content-type': undefined }), 415, /application\/json/],
    [
      'valid JSON missing fields',
      () => forgejoDelivery('push', { ref: 'refs/heads/main' }, SECRET),
      400,
      /after|repository/,
    ],
    [
      'JSON that is not an object',
      () => forgejoDelivery('push', [1, 2, 3], SECRET),
      400,
      /not a JSON object/,
    ],
    [
      'short commit sha',
      () => {
        const p = fixture('forgejo-push');
        p.after = 'bffeb742';
        return forgejoDelivery('push', p, SECRET);
      },
      400,
      /full commit sha/,
    ],
    [
      'no event header',
      () => withHeaders(push(), { 'x-forgejo-event': undefined, 'x-gitea-event': undefined }),
      400,
      /event header/,
    ],
  ];
  test.each(cases)('%s', async (_name, make, status, message) => {
    const r = await send(server.url, make());
    expect(r.status).toBe(status);
    expect(String(r.body.error)).toMatch(message);
    expect(await vhost.depth(TOPOLOGY.queue)).toBe(0);
  });

  const ignored: [string, () => Delivery, RegExp][] = [
    [
      'unknown event',
      () => forgejoDelivery('issues', fixture('forgejo-push'), SECRET),
      /event "issues" does not run CI/,
    ],
    [
      'Forgejo push deleting a branch',
      () => forgejoDelivery('push', fixture('forgejo-push-branch-delete'), SECRET),
      /deletes refs\/heads\/feature\/old/,
    ],
    [
      'GitHub push deleting a branch',
      () => githubDelivery('push', fixture('github-push-branch-delete'), SECRET),
      /deletes/,
    ],
    [
      'pull_request closed',
      () =>
        githubDelivery(
          'pull_request',
          { ...fixture('github-pull-request-opened'), action: 'closed' },
          SECRET,
        ),
      /action "closed" does not run CI/,
    ],
  ];
  test.each(ignored)('%s → 200, ignored with a reason', async (_name, make, reason) => {
    const r = await send(server.url, make());
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ignored');
    expect(String(r.body.reason)).toMatch(reason);
    expect(await vhost.depth(TOPOLOGY.queue)).toBe(0);
  });
});

test('an endpoint without a secret refuses deliveries unless the insecure flag is set', async () => {
  const publisher = amqp.publisher();
  const strict = await startWebhookServer({
    addr: `127.0.0.1:${await freePort()}`,
    bodyLimit: BODY_LIMIT,
    secrets: { forgejo: SECRET },
    insecure: false,
    publisher,
    log,
  });
  const insecure = await startWebhookServer({
    addr: `127.0.0.1:${await freePort()}`,
    bodyLimit: BODY_LIMIT,
    secrets: {},
    insecure: true,
    publisher,
    log,
  });
  try {
    const r = await send(strict.url, githubDelivery('push', fixture('github-push'), undefined));
    expect(r.status).toBe(401);
    expect(String(r.body.error)).toMatch(/no secret is configured for github/);
    expect(await vhost.depth(TOPOLOGY.queue)).toBe(0);
    expect((await send(insecure.url, githubDelivery('push', fixture('github-push'), undefined))).status).toBe(
      202,
    );
    expect(await queued()).toHaveLength(1);
  } finally {
    await strict.close();
    await insecure.close();
    await publisher.close();
  }
});

test('broker unreachable and no outbox → 503 with Retry-After', async () => {
  const deadUrl = `amqp://guest:guest@127.0.0.1:${await freePort()}/`;
  const down = await AmqpConnection.connect(
    { topology: TOPOLOGY, url: deadUrl, log, name: 'down' },
    { waitForFirst: false },
  );
  const publisher = down.publisher();
  const s = await startWebhookServer({
    addr: `127.0.0.1:${await freePort()}`,
    bodyLimit: BODY_LIMIT,
    secrets: { forgejo: SECRET },
    insecure: false,
    publisher,
    log,
    brokerUp: () => down.connected,
  });
  try {
    const d = forgejoPush(SECRET);
    const res = await fetch(`${s.url}${d.path}`, { method: 'POST', headers: d.headers, body: d.body });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(((await res.json()) as { error: string }).error).toMatch(/RabbitMQ is not reachable/);
    const health = await fetch(`${s.url}/healthz`);
    expect(health.status).toBe(503);
  } finally {
    await s.close();
    await publisher.close();
    await down.close();
  }
});
