/**
 * Issue 21: the banner of `solstice webhook serve` said GitHub accepted unsigned deliveries
 * when it did not. Each of endpointPolicy's three answers is checked against what the server
 * does with an unsigned and a signed ping (a real server on 127.0.0.1; a ping enqueues
 * nothing, so the publisher is never called).
 */
import { endpointPolicy, startWebhookServer, type WebhookOptions } from '../../../ingress/webhook-server';
import type { Forge } from '../../../forges/webhook';
import { createLogger } from '../../../platform/logger';
import { forgejoDelivery, githubDelivery, send, type Delivery } from '../../support/webhooks';

const log = createLogger('test');
log.level = 'silent';
const SECRET = 'banner-test-secret';

function options(secrets: WebhookOptions['secrets'], insecure: boolean): WebhookOptions {
  return {
    addr: '127.0.0.1:0',
    bodyLimit: 1024 * 1024,
    secrets,
    insecure,
    publisher: {
      publish: () => Promise.reject(new Error('a ping must not be published')),
      close: () => Promise.resolve(),
    },
    log,
  };
}

const ping = (forge: Forge, secret: string | undefined): Delivery =>
  forge === 'github'
    ? githubDelivery('ping', { zen: 'Keep it logically awesome.', hook_id: 1 }, secret)
    : forgejoDelivery('ping', { hook_id: 1 }, secret);

async function status(opts: WebhookOptions, d: Delivery): Promise<number> {
  const server = await startWebhookServer(opts);
  try {
    return (await send(server.url, d)).status;
  } finally {
    await server.close();
  }
}

describe.each<Forge>(['github', 'forgejo'])('the %s endpoint banner says what the server does', (forge) => {
  test('with a secret: signed deliveries only, even with --insecure', async () => {
    const opts = options({ [forge]: SECRET }, true);
    expect(endpointPolicy(opts, forge)).toBe('signed deliveries only');
    expect(await status(opts, ping(forge, undefined))).toBe(401);
    expect(await status(opts, ping(forge, SECRET))).toBe(200);
  });

  test('without a secret, with --insecure: unsigned deliveries accepted', async () => {
    const opts = options({}, true);
    expect(endpointPolicy(opts, forge)).toBe('UNSIGNED deliveries accepted (insecure)');
    expect(await status(opts, ping(forge, undefined))).toBe(200);
  });

  test('without a secret or --insecure: every delivery refused', async () => {
    const opts = options({}, false);
    expect(endpointPolicy(opts, forge)).toBe('refuses every delivery: no secret is configured');
    expect(await status(opts, ping(forge, undefined))).toBe(401);
    expect(await status(opts, ping(forge, SECRET))).toBe(401);
  });

  test("another forge's secret does not sign this endpoint", async () => {
    const other: Forge = forge === 'github' ? 'forgejo' : 'github';
    const opts = options({ [other]: SECRET }, false);
    expect(endpointPolicy(opts, forge)).toBe('refuses every delivery: no secret is configured');
    expect(await status(opts, ping(forge, SECRET))).toBe(401);
  });
});
