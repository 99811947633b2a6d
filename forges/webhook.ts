/**
 * What Forgejo, Gitea and GitHub send, reduced to what starts a run: signature checks and
 * the mapping of `push` / `pull_request` / `ping` deliveries to a JobRequest v1 (or to a
 * reason for ignoring them). Headers and signature spelling are per forge
 * (forgejo/webhook.ts, github/webhook.ts); the payloads of push and pull_request share one
 * shape. Recorded payloads: forges/<forge>/fixtures, described in forges/README.md.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { newJobRequest, type JobRequestV1 } from '../model/job-request';
import type { DeliveryMeta, Forge, Headers, WebhookDialect } from './forge';
import { forgejoWebhook } from './forgejo/webhook';
import { githubWebhook } from './github/webhook';

export type { DeliveryMeta, Forge } from './forge';

const DIALECTS: Record<Forge, WebhookDialect> = { forgejo: forgejoWebhook, github: githubWebhook };

export function deliveryMeta(forge: Forge, h: Headers): DeliveryMeta {
  return DIALECTS[forge].deliveryMeta(h);
}

/**
 * HMAC-SHA256 of the raw body, compared in constant time. Returns why it failed, or
 * undefined when it matches.
 */
export function checkSignature(
  forge: Forge,
  secret: string,
  body: Buffer,
  signature: string | undefined,
): string | undefined {
  if (!signature) return 'missing signature';
  const hex = DIALECTS[forge].signatureHex(signature);
  if (!hex) return DIALECTS[forge].signatureShape;
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(hex, 'hex');
  return timingSafeEqual(expected, given) ? undefined : 'signature does not match';
}

export type Outcome =
  | { kind: 'enqueue'; request: JobRequestV1 }
  | { kind: 'ignore'; reason: string }
  | { kind: 'pong' }
  | { kind: 'invalid'; reason: string };

const ZERO_SHA = /^0+$/;
const sha = z.string().regex(/^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$/, 'must be a full commit sha');
const repository = z.object({ clone_url: z.string().min(1), full_name: z.string().optional() });

const pushSchema = z.object({
  ref: z.string().min(1),
  after: z.string().regex(/^[0-9a-fA-F]+$/, 'must be a hex commit sha'),
  // What the branch pointed at before the push: `paths` filters look at the files between.
  before: z.string().optional(),
  deleted: z.boolean().optional(),
  // The commit the push leads to; for an annotated tag, the commit the tag points to.
  head_commit: z.object({ id: z.string() }).nullish(),
  repository,
});

/**
 * The commit a push runs. For an annotated tag, `after` is the tag object's id (Gitea, Forgejo
 * and GitHub alike), which is no commit: statuses on it show nowhere and the run would record
 * the wrong sha. Its `head_commit` is the commit the tag points to (the forge peeled it).
 */
function pushedCommit(ref: string, after: string, headCommit: string | undefined): string {
  if (ref.startsWith('refs/tags/') && headCommit && sha.safeParse(headCommit).success) return headCommit;
  return after;
}

const pullRequestSchema = z.object({
  action: z.string().min(1),
  number: z.number().int().positive(),
  pull_request: z.object({ head: z.object({ sha }) }),
  repository,
});

function describeIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
}

/** Forgejo/Gitea name a new push to a PR `synchronized`, GitHub `synchronize`. */
const PR_ACTIONS = new Set(['opened', 'reopened', 'synchronize', 'synchronized']);

/** Maps one delivery to what should happen. `payload` is the parsed JSON body. */
export function interpret(forge: Forge, meta: DeliveryMeta, payload: unknown): Outcome {
  const event = meta.event;
  if (!event)
    return {
      kind: 'invalid',
      reason: `no event header (${DIALECTS[forge].eventHeaders})`,
    };
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    return { kind: 'invalid', reason: 'body is not a JSON object' };
  const source = forge;
  switch (event) {
    case 'ping':
      return { kind: 'pong' };
    case 'push': {
      const p = pushSchema.safeParse(payload);
      if (!p.success) return { kind: 'invalid', reason: `push payload: ${describeIssues(p.error)}` };
      const { ref, after, before, deleted, head_commit: head, repository: repo } = p.data;
      if (deleted === true || ZERO_SHA.test(after))
        return { kind: 'ignore', reason: `push deletes ${ref}; nothing to build` };
      if (!sha.safeParse(after).success)
        return { kind: 'invalid', reason: 'push payload: after: must be a full commit sha' };
      return {
        kind: 'enqueue',
        request: newJobRequest({
          source,
          repoUrl: repo.clone_url,
          commitSha: pushedCommit(ref, after, head?.id),
          ref,
          deliveryId: meta.deliveryId,
          event: 'push',
          // Unknown (a new branch: all zeros) is left out: every `paths` filter then matches.
          ...(before && sha.safeParse(before).success && !ZERO_SHA.test(before)
            ? { beforeSha: before.toLowerCase() }
            : {}),
        }),
      };
    }
    case 'pull_request': {
      const action = (payload as { action?: unknown }).action;
      if (typeof action === 'string' && !PR_ACTIONS.has(action))
        return {
          kind: 'ignore',
          reason: `pull_request action "${action}" does not run CI (only opened, synchronize, reopened)`,
        };
      const p = pullRequestSchema.safeParse(payload);
      if (!p.success) return { kind: 'invalid', reason: `pull_request payload: ${describeIssues(p.error)}` };
      const { number, action: prAction, pull_request: pr, repository: repo } = p.data;
      // The base repository serves the head commit as refs/pull/<n>/head, forks included,
      // and it is where the commit status belongs.
      return {
        kind: 'enqueue',
        request: newJobRequest({
          source,
          repoUrl: repo.clone_url,
          commitSha: pr.head.sha,
          ref: `refs/pull/${number}/head`,
          deliveryId: meta.deliveryId,
          event: 'pull_request',
          action: prAction,
          prNumber: number,
        }),
      };
    }
    default:
      return { kind: 'ignore', reason: `event "${event}" does not run CI (only push, pull_request, ping)` };
  }
}
