/** Sending webhooks as the forges do: real fixture payloads, signed with the test's secret. */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const FORGES = path.resolve(__dirname, '../../forges');

/** A recorded payload from forges/<forge>/fixtures; `gitea-*` payloads are Forgejo's folder's. */
export function fixture(name: string): Record<string, unknown> {
  const forge = name.startsWith('github-') ? 'github' : 'forgejo';
  const file = path.join(FORGES, forge, 'fixtures', `${name}.json`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

export function randomSha(): string {
  return randomBytes(20).toString('hex');
}

export function hmacHex(secret: string, body: Buffer | string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export interface Delivery {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** A JSON delivery to `path`; `headers` gets the body's HMAC when there is a secret. */
function delivery(
  path: string,
  payload: unknown,
  secret: string | undefined,
  headers: (sig: string | undefined) => Record<string, string>,
): Delivery {
  const body = Buffer.from(JSON.stringify(payload));
  const sig = secret ? hmacHex(secret, body) : undefined;
  return { path, body, headers: { 'content-type': 'application/json', ...headers(sig) } };
}

/** Headers as Forgejo sends them (it sends Gitea's too). */
export function forgejoDelivery(
  event: string,
  payload: unknown,
  secret: string | undefined,
  deliveryId: string = randomUUID(),
): Delivery {
  return delivery('/webhooks/forgejo', payload, secret, (sig) => ({
    'x-forgejo-delivery': deliveryId,
    'x-forgejo-event': event,
    'x-gitea-delivery': deliveryId,
    'x-gitea-event': event,
    ...(sig
      ? { 'x-forgejo-signature': sig, 'x-gitea-signature': sig, 'x-hub-signature-256': `sha256=${sig}` }
      : {}),
  }));
}

/** Headers as Gitea sends them (no X-Forgejo-*). */
export function giteaDelivery(
  event: string,
  eventType: string,
  payload: unknown,
  secret: string,
  deliveryId: string = randomUUID(),
): Delivery {
  return delivery('/webhooks/gitea', payload, secret, (sig = '') => ({
    'x-gitea-delivery': deliveryId,
    'x-gitea-event': event,
    'x-gitea-event-type': eventType,
    'x-gitea-signature': sig,
    'x-gogs-delivery': deliveryId,
    'x-gogs-event': event,
    'x-gogs-signature': sig,
    'x-hub-signature-256': `sha256=${sig}`,
  }));
}

export function githubDelivery(
  event: string,
  payload: unknown,
  secret: string | undefined,
  deliveryId: string = randomUUID(),
): Delivery {
  return delivery('/webhooks/github', payload, secret, (sig) => ({
    'x-github-delivery': deliveryId,
    'x-github-event': event,
    'x-github-hook-id': '109948940',
    'user-agent': 'GitHub-Hookshot/044aadd',
    ...(sig ? { 'x-hub-signature-256': `sha256=${sig}` } : {}),
  }));
}

export async function send(
  baseUrl: string,
  d: Delivery,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}${d.path}`, { method: 'POST', headers: d.headers, body: d.body });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { raw: text };
  }
  return { status: res.status, body };
}

/** A push of a fresh commit, as a Forgejo delivery. */
export function forgejoPush(secret: string, opts: { sha?: string; deliveryId?: string } = {}): Delivery {
  const p = fixture('forgejo-push');
  p.after = opts.sha ?? randomSha();
  return forgejoDelivery('push', p, secret, opts.deliveryId);
}
