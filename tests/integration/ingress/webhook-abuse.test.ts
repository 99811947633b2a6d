/**
 * Issue 21, the webhook side, on a real RabbitMQ: a correctly signed delivery cannot name a
 * repository outside the forge that signed it (git's fd transport, a path on this host,
 * another host), and a bounded mutation fuzz of signed and raw payloads never gets a 5xx
 * nor queues a repository the forge may not name.
 */
import { randomUUID } from 'node:crypto';
import { AmqpConnection } from '../../../ingress/amqp';
import { freePort } from '../../../platform/net';
import { createLogger } from '../../../platform/logger';
import { parseJobRequest } from '../../../model/job-request';
import { startWebhookServer, type RunningWebhookServer } from '../../../ingress/webhook-server';
import { webhookRepoProblem, type RepoHosts } from '../../../ingress/webhook-repo';
import { createTestVhost, TOPOLOGY, type TestVhost } from '../../support/rabbitmq';
import {
  fixture,
  forgejoDelivery,
  githubDelivery,
  hmacHex,
  randomSha,
  send,
  type Delivery,
} from '../../support/webhooks';
import { seededRandom } from '../../support/seeded-random';

const SECRET = 'webhook-abuse-secret';
const HOSTS: RepoHosts = { forgejoApiUrl: 'http://forgejo.example/api/v1' };
const log = createLogger('test');
log.level = 'silent';

let vhost: TestVhost;
let amqp: AmqpConnection;
let server: RunningWebhookServer;

beforeAll(async () => {
  vhost = await createTestVhost();
  amqp = await AmqpConnection.connect({
    url: vhost.url,
    log,
    name: 'webhook abuse test',
    topology: TOPOLOGY,
  });
  server = await startWebhookServer({
    addr: `127.0.0.1:${await freePort()}`,
    bodyLimit: 256 * 1024,
    secrets: { forgejo: SECRET, github: SECRET },
    insecure: false,
    publisher: amqp.publisher(),
    log,
    brokerUp: () => amqp.connected,
    repoHosts: HOSTS,
  });
});

afterAll(async () => {
  await server?.close();
  await amqp?.close();
  await vhost?.drop();
});

async function queuedRepoUrls(): Promise<string[]> {
  const msgs = await vhost.drain(TOPOLOGY.queue);
  return msgs.map((m) => {
    const r = parseJobRequest(m.content, m.properties.headers ?? {});
    if (!r.ok) throw new Error(`queued an invalid request: ${r.reason}`);
    return r.request.repo_url;
  });
}

function push(cloneUrl: string): Record<string, unknown> {
  const p = fixture('forgejo-push');
  p.after = randomSha();
  (p.repository as Record<string, unknown>).clone_url = cloneUrl;
  return p;
}

test.each([
  ['fd::3', /not an https or ssh URL|uses fd/],
  ['ext::sh -c touch% /tmp/pwned', /not an https or ssh URL|uses ext/],
  ['/srv/git/other-repository', /a path on this host/],
  ['file:///srv/git/other-repository', /uses file/],
  ['https://elsewhere.example/acme/app.git', /on elsewhere\.example, not on forgejo\.example/],
])('a signed push whose clone_url is %s is refused and queues nothing', async (url, why) => {
  await vhost.drain(TOPOLOGY.queue);
  const r = await send(server.url, forgejoDelivery('push', push(url), SECRET));
  expect(r.status).toBe(400);
  expect(String(r.body.error)).toMatch(why);
  expect(await queuedRepoUrls()).toEqual([]);
});

test("a signed push of the forge's own repository is still queued", async () => {
  const r = await send(
    server.url,
    forgejoDelivery('push', push('http://forgejo.example/solstice/app.git'), SECRET),
  );
  expect(r.status).toBe(202);
  expect(await queuedRepoUrls()).toEqual(['http://forgejo.example/solstice/app.git']);
});

const HOSTILE: unknown[] = [
  null,
  -1,
  4294967295,
  1e308,
  '',
  'fd::3',
  'ext::sh',
  '/etc',
  '--upload-pack=touch /tmp/x',
  '-oProxyCommand=x',
  '\u0000',
  '../../../../etc/passwd',
  'x'.repeat(100_000),
  {},
  [],
  true,
  'https://elsewhere.example/a.git',
  '0'.repeat(40),
  'refs/heads/\u202e',
];

function paths(v: unknown, at: string[] = [], out: string[][] = []): string[][] {
  if (v && typeof v === 'object') {
    for (const [k, c] of Object.entries(v)) {
      out.push([...at, k]);
      paths(c, [...at, k], out);
    }
  }
  return out;
}

function mutate(payload: Record<string, unknown>, rnd: () => number): Record<string, unknown> {
  const copy = structuredClone(payload);
  const all = paths(copy);
  const n = 1 + Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) {
    const p = all[Math.floor(rnd() * all.length)];
    let parent = copy as Record<string, unknown>;
    for (const k of p.slice(0, -1)) {
      const next = parent[k];
      if (!next || typeof next !== 'object') break;
      parent = next as Record<string, unknown>;
    }
    const key = p[p.length - 1];
    if (rnd() < 0.2) delete parent[key];
    else parent[key] = HOSTILE[Math.floor(rnd() * HOSTILE.length)];
  }
  return copy;
}

test('1,000 mutated deliveries: never a 5xx, nothing queued that the forge may not name', async () => {
  await vhost.drain(TOPOLOGY.queue);
  const rnd = seededRandom(21);
  const bases: [string, (p: unknown) => Delivery][] = [
    ['forgejo-push', (p) => forgejoDelivery('push', p, SECRET)],
    ['gitea-pull-request-synchronized', (p) => forgejoDelivery('pull_request', p, SECRET)],
    ['github-push', (p) => githubDelivery('push', p, SECRET)],
    ['github-pull-request-opened', (p) => githubDelivery('pull_request', p, SECRET)],
  ];
  const statuses = new Map<number, number>();
  for (let i = 0; i < 1000; i++) {
    const [name, make] = bases[i % bases.length];
    let d: Delivery;
    if (i % 5 === 4) {
      // Raw bytes: a signed body that is not what JSON.stringify makes (cut, flipped bytes).
      const body = Buffer.from(JSON.stringify(fixture(name)));
      const cut = body.subarray(0, Math.floor(rnd() * body.length));
      for (let j = 0; j < 4; j++) cut[Math.floor(rnd() * cut.length)] = Math.floor(rnd() * 256);
      const signed = make({});
      d = { ...signed, body: cut, headers: { ...signed.headers } };
      for (const h of Object.keys(d.headers))
        if (/signature/.test(h))
          d.headers[h] =
            h === 'x-hub-signature-256' ? `sha256=${hmacHex(SECRET, cut)}` : hmacHex(SECRET, cut);
    } else {
      d = make(mutate(fixture(name), rnd));
    }
    d.headers['x-forgejo-delivery'] &&= randomUUID();
    const r = await send(server.url, d);
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    if (r.status >= 500)
      throw new Error(`case ${i} (${name}) answered ${r.status}: ${JSON.stringify(r.body)}`);
  }
  expect([...statuses.keys()].every((s) => [200, 202, 400, 413].includes(s))).toBe(true);
  for (const url of await queuedRepoUrls()) {
    const forge = url.includes('github.com') ? 'github' : 'forgejo';
    expect(webhookRepoProblem(forge, url, HOSTS)).toBeUndefined();
  }
}, 60_000);
