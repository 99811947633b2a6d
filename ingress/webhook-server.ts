/**
 * Webhook ingress: `POST /webhooks/forgejo` (Forgejo and Gitea) and `POST /webhooks/github`.
 *
 * Order of checks, each answering before anything is enqueued:
 *   content type (415) → body size (413) → signature over the raw body (401) → JSON (400)
 *   → event: push / pull_request (opened, synchronize, reopened) enqueue; ping answers pong;
 *     branch deletions and other events are answered 200 and ignored with a reason.
 * An enqueue answers 202 only once the request is durable: RabbitMQ confirmed the message, or,
 * while the broker cannot take it (or older deliveries still wait), it is in the PostgreSQL
 * outbox (./outbox.ts), drained in order once the broker is back. Forges do not deliver a
 * failed webhook again, so only when neither the broker nor the database takes it is the answer
 * 503 (with Retry-After, for a person pressing Replay).
 *
 * Each delivery is a server span (the root of the job's trace) and counts once in
 * solstice.webhook.deliveries by forge and outcome.
 */
import { SpanKind, type Span } from '@opentelemetry/api';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Publisher } from './amqp';
import type { Outbox } from './outbox';
import { describeError } from '../platform/errors';
import { instruments, type WebhookOutcome } from '../platform/metrics';
import { ATTR, repoAttribute } from '../model/span-attributes';
import { tracer } from '../platform/telemetry';
import { pipelineIdsForRequest } from './pipeline-start';
import { encodeJobRequest, JOB_REQUEST_V1, type JobRequestV1 } from '../model/job-request';
import { webhookRepoProblem, type RepoHosts } from './webhook-repo';
import type { Logger } from '../platform/logger';
import { listenHttp } from '../platform/net';
import type { Config } from '../platform/config';
import { checkSignature, deliveryMeta, interpret, type Forge } from '../forges/webhook';

export interface WebhookOptions {
  addr: string;
  bodyLimit: number;
  secrets: Partial<Record<Forge, string>>;
  /** Accept unsigned deliveries on endpoints without a secret (local use only). */
  insecure: boolean;
  publisher: Publisher;
  /** Where deliveries wait while the broker is down; without it such deliveries answer 503. */
  outbox?: Outbox;
  log: Logger;
  /** The dedupe window the bridge uses, so the ids in the answer are the run's. */
  dedupeWindowMs?: number;
  /** Tells /healthz whether the broker is connected. */
  brokerUp?: () => boolean;
  /** Which repositories a forge's deliveries may name (webhook-repo.ts). */
  repoHosts?: RepoHosts;
}

/** What an endpoint accepts, for the banner of `solstice webhook`: the rule handle() applies. */
export function endpointPolicy(opts: Pick<WebhookOptions, 'secrets' | 'insecure'>, forge: Forge): string {
  if (opts.secrets[forge]) return 'signed deliveries only';
  if (opts.insecure) return 'UNSIGNED deliveries accepted (insecure)';
  return 'refuses every delivery: no secret is configured';
}

/** The options `solstice webhook` and `solstice up` start the server with, from the settings. */
export function configuredWebhookOptions(
  cfg: Pick<
    Config,
    | 'webhookAddr'
    | 'webhookBodyLimit'
    | 'forgejoWebhookSecret'
    | 'githubWebhookSecret'
    | 'webhookInsecure'
    | 'webhookLocalRepos'
    | 'forgejoApiUrl'
    | 'githubApiUrl'
    | 'webhookDedupeWindowMs'
  >,
  deps: Pick<WebhookOptions, 'publisher' | 'log' | 'brokerUp' | 'outbox'>,
): WebhookOptions {
  return {
    addr: cfg.webhookAddr,
    bodyLimit: cfg.webhookBodyLimit,
    secrets: { forgejo: cfg.forgejoWebhookSecret, github: cfg.githubWebhookSecret },
    insecure: cfg.webhookInsecure,
    repoHosts: {
      forgejoApiUrl: cfg.forgejoApiUrl,
      githubApiUrl: cfg.githubApiUrl,
      localRepos: cfg.webhookLocalRepos,
    },
    dedupeWindowMs: cfg.webhookDedupeWindowMs,
    ...deps,
  };
}

export interface RunningWebhookServer {
  url: string;
  close(): Promise<void>;
}

const RETRY_AFTER_S = 5;

export function buildWebhookApp(opts: WebhookOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: opts.bodyLimit, logger: false, return503OnClosing: true });
  // Only JSON, kept as raw bytes: the signature is over exactly what was sent.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) opts.log.error({ err: err.message }, 'webhook request failed');
    const message =
      err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? 'content type must be application/json (in the forge: webhook content type "application/json")'
        : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? `body larger than ${opts.bodyLimit} bytes`
          : err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
            ? 'empty body'
            : status >= 500
              ? 'internal error'
              : err.message;
    void reply.code(status).send({ error: message });
  });

  app.get('/healthz', async (_req, reply) => {
    const up = opts.brokerUp?.() ?? true;
    return reply.code(up ? 200 : 503).send({ status: up ? 'ok' : 'broker unavailable' });
  });

  /** Durably queues one request: in the broker, or in the outbox behind older waiting ones. */
  const enqueue = async (r: JobRequestV1): Promise<'broker' | 'outbox'> => {
    const outbox = opts.outbox;
    const toOutbox = async (brokerErr?: unknown): Promise<'outbox'> => {
      try {
        await outbox!.add(r);
      } catch (dbErr) {
        throw new Error(
          `${brokerErr ? `${describeError(brokerErr)}; ` : ''}the webhook outbox (PostgreSQL) failed too: ${describeError(dbErr)}`,
          { cause: dbErr },
        );
      }
      outbox!.kick();
      return 'outbox';
    };
    // Deliveries still waiting go first: a new push must not overtake them.
    if (outbox && (await outbox.hasPending().catch(() => false))) return toOutbox();
    try {
      await opts.publisher.publish(encodeJobRequest(r), {
        headers: { schema_version: JOB_REQUEST_V1 },
        messageId: r.request_id,
      });
      return 'broker';
    } catch (err) {
      if (!outbox) throw err;
      opts.log.warn({ err: describeError(err) }, 'broker unavailable; delivery kept in the webhook outbox');
      return toOutbox(err);
    }
  };

  const handler = (forge: Forge) => (req: FastifyRequest, reply: FastifyReply) =>
    tracer().startActiveSpan(
      `webhook ${forge}`,
      { kind: SpanKind.SERVER, attributes: { [ATTR.forge]: forge, 'http.request.method': 'POST' } },
      async (span) => {
        let outcome: WebhookOutcome = 'invalid';
        try {
          return await handle(forge, req, reply, span, (o) => (outcome = o));
        } finally {
          span.setAttribute(ATTR.webhookOutcome, outcome);
          span.setAttribute('http.response.status_code', reply.statusCode);
          span.end();
          instruments().webhookDeliveries.add(1, { forge, outcome });
        }
      },
    );

  const handle = async (
    forge: Forge,
    req: FastifyRequest,
    reply: FastifyReply,
    span: Span,
    note: (o: WebhookOutcome) => void,
  ) => {
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) return reply.code(400).send({ error: 'empty body' });
    const meta = deliveryMeta(forge, req.headers);
    const secret = opts.secrets[forge];
    if (secret) {
      const problem = checkSignature(forge, secret, body, meta.signature);
      if (problem) {
        opts.log.warn({ forge, delivery: meta.deliveryId, problem }, 'webhook refused: bad signature');
        note('unauthorized');
        return reply.code(401).send({ error: `${meta.signatureHeader}: ${problem}` });
      }
    } else if (!opts.insecure) {
      note('unauthorized');
      return reply.code(401).send({
        error: `no secret is configured for ${forge} webhooks, so no delivery can be verified`,
      });
    }
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return reply.code(400).send({ error: `body is not valid JSON: ${describeError(err)}` });
    }
    if (meta.deliveryId !== undefined && (meta.deliveryId.length === 0 || meta.deliveryId.length > 256))
      return reply.code(400).send({ error: 'delivery id header must be 1 to 256 characters' });
    let outcome;
    try {
      outcome = interpret(forge, meta, payload);
    } catch (err) {
      outcome = { kind: 'invalid' as const, reason: describeError(err) };
    }
    if (outcome.kind === 'enqueue') {
      const problem = webhookRepoProblem(forge, outcome.request.repo_url, opts.repoHosts ?? {});
      if (problem) outcome = { kind: 'invalid' as const, reason: problem };
    }
    switch (outcome.kind) {
      case 'invalid':
        return reply.code(400).send({ error: outcome.reason });
      case 'pong':
        note('pong');
        return reply.code(200).send({ status: 'pong' });
      case 'ignore':
        note('ignored');
        opts.log.info({ forge, delivery: meta.deliveryId, reason: outcome.reason }, 'webhook ignored');
        return reply.code(200).send({ status: 'ignored', reason: outcome.reason });
      case 'enqueue': {
        const r = outcome.request;
        span.setAttributes({
          [ATTR.repo]: repoAttribute(r.repo_url),
          [ATTR.commit]: r.commit_sha,
          [ATTR.requestId]: r.request_id,
        });
        let queuedIn: 'broker' | 'outbox';
        try {
          queuedIn = await enqueue(r);
        } catch (err) {
          opts.log.warn(
            { forge, delivery: meta.deliveryId, err: describeError(err) },
            'webhook not enqueued',
          );
          note('broker_unavailable');
          return reply
            .code(503)
            .header('retry-after', String(RETRY_AFTER_S))
            .send({
              error: `job queue unavailable, and the forge will not deliver this again by itself: ${describeError(err)}`,
            });
        }
        const ids = pipelineIdsForRequest(r, opts.dedupeWindowMs);
        note('enqueued');
        span.setAttribute(ATTR.pipelineId, ids.pipelineId);
        return reply.code(202).send({
          status: 'accepted',
          queued: queuedIn,
          request_id: r.request_id,
          workflow_id: ids.workflowId,
          pipeline_id: ids.pipelineId,
        });
      }
    }
  };

  app.post('/webhooks/forgejo', handler('forgejo'));
  app.post('/webhooks/gitea', handler('forgejo'));
  app.post('/webhooks/github', handler('github'));
  return app;
}

export async function startWebhookServer(opts: WebhookOptions): Promise<RunningWebhookServer> {
  const app = buildWebhookApp(opts);
  const url = await listenHttp(app, opts.addr);
  opts.log.info({ url }, 'webhook ingress listening');
  return { url, close: () => app.close() };
}
