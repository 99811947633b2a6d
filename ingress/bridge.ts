/**
 * The bridge: consumes JobRequest v1 messages from `solstice.jobs.v1` and starts one
 * JobWorkflow per request, exactly once.
 *
 * - Ack only after Temporal accepted the start (or said it already had it): a crash, a lost
 *   connection or a restart before that leaves the message unacked, and RabbitMQ redelivers it.
 * - The workflow id (and the job id) are derived from the request, and starts use
 *   REJECT_DUPLICATE, so a redelivered message or a repeated webhook never starts a second run.
 * - An invalid message can never succeed: it is published to the dead-letter exchange with
 *   the reason in the `x-solstice-reason` header (and its original headers), then acked.
 *   We publish it ourselves rather than `nack(requeue=false)` because a broker dead-letter
 *   cannot carry our reason. If that publish fails we fall back to the nack, so the message
 *   still lands in the DLQ (with only RabbitMQ's x-death header) rather than looping.
 * - Anything else (Temporal unreachable, timeouts) is transient: the start is retried with
 *   backoff while the message stays unacked; it is never dead-lettered.
 */
import { trace } from '@opentelemetry/api';
import type { Client } from '@temporalio/client';
import { status as grpcStatus } from '@grpc/grpc-js';
import {
  backoffDelay,
  REASON_HEADER,
  type AmqpConnection,
  type Consumer,
  type Delivery,
  type Publisher,
} from './amqp';
import type { Config } from '../platform/config';
import { describeError } from '../platform/errors';
import { startPipelineForRequest } from './pipeline-start';
import { parseJobRequest } from '../model/job-request';
import type { Logger } from '../platform/logger';
import { ATTR, repoAttribute } from '../model/span-attributes';

export interface BridgeStats {
  /** Runs this bridge started. */
  started: number;
  /** Requests whose run already existed (redeliveries, repeated webhooks). */
  duplicates: number;
  deadLettered: number;
  /** Start attempts that failed transiently and were retried. */
  retries: number;
}

export interface RunningBridge {
  stats: BridgeStats;
  /** Stops consuming, waits for in-flight messages to settle (or be abandoned to redelivery). */
  close(): Promise<void>;
}

export interface BridgeDeps {
  amqp: AmqpConnection;
  temporal: Client;
  log: Logger;
  /** Called after every start or duplicate; tests and the bench use it to time starts. */
  onStarted?: (e: { workflowId: string; pipelineId: string; started: boolean; requestId: string }) => void;
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Deadline of one start call: an unreachable Temporal must fail the call so it is retried. */
  startTimeoutMs?: number;
}

function explain(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause ? `${describeError(err)}: ${describeError(cause)}` : describeError(err);
}

/** Temporal refused the request itself (e.g. an id too long): retrying cannot help. */
function isPermanent(err: unknown): boolean {
  const code =
    (err as { code?: unknown; cause?: { code?: unknown } }).code ??
    (err as { cause?: { code?: unknown } }).cause?.code;
  return code === grpcStatus.INVALID_ARGUMENT;
}

export function startBridge(
  cfg: Pick<Config, 'taskQueue' | 'jobTimeoutMs' | 'bootTimeoutMs' | 'amqpPrefetch'> &
    Partial<Pick<Config, 'webhookDedupeWindowMs'>>,
  deps: BridgeDeps,
): RunningBridge {
  const { log } = deps;
  const stats: BridgeStats = { started: 0, duplicates: 0, deadLettered: 0, retries: 0 };
  const dlq: Publisher = deps.amqp.publisher();
  const inFlight = new Set<Promise<void>>();
  let closing = false;

  async function deadLetter(d: Delivery, reason: string): Promise<void> {
    const m = d.message;
    log.warn({ reason, messageId: m.properties.messageId }, 'invalid job request: dead-lettered');
    try {
      await dlq.publish(m.content, {
        exchange: deps.amqp.topology.dlx,
        routingKey: deps.amqp.topology.queue,
        messageId: m.properties.messageId ? String(m.properties.messageId) : undefined,
        headers: {
          ...(m.properties.headers ?? {}),
          [REASON_HEADER]: reason.slice(0, 1000),
          'x-solstice-original-queue': deps.amqp.topology.queue,
        },
      });
      d.ack();
    } catch (err) {
      log.warn(
        { err: describeError(err) },
        'publishing to the DLX failed; rejecting to the broker DLX instead',
      );
      d.reject();
    }
    stats.deadLettered += 1;
  }

  async function handle(d: Delivery): Promise<void> {
    const parsed = parseJobRequest(d.message.content, d.message.properties.headers ?? {});
    if (!parsed.ok) return deadLetter(d, parsed.reason);
    const r = parsed.request;
    // The delivery's consumer span (ingress/amqp.ts); the workflow start below continues it.
    trace.getActiveSpan()?.setAttributes({
      [ATTR.repo]: repoAttribute(r.repo_url),
      [ATTR.commit]: r.commit_sha,
      [ATTR.requestId]: r.request_id,
    });
    for (let attempt = 1; ; attempt += 1) {
      try {
        const deadline = Date.now() + (deps.startTimeoutMs ?? 10_000);
        const res = await deps.temporal.withDeadline(deadline, () =>
          startPipelineForRequest(deps.temporal, cfg, r),
        );
        d.ack();
        if (res.started) stats.started += 1;
        else stats.duplicates += 1;
        log.info(
          {
            workflowId: res.workflowId,
            pipelineId: res.pipelineId,
            requestId: r.request_id,
            started: res.started,
          },
          res.started ? 'run started' : 'run already started for this request; acked',
        );
        deps.onStarted?.({ ...res, requestId: r.request_id });
        return;
      } catch (err) {
        if (isPermanent(err)) return deadLetter(d, `Temporal refused the start: ${explain(err)}`);
        // Nobody can ack it any more: RabbitMQ has it back and redelivers it.
        if (closing || !d.live()) return;
        stats.retries += 1;
        const delay = backoffDelay(attempt, deps.retryDelayMs ?? 500, deps.maxRetryDelayMs ?? 30_000);
        log.warn(
          { err: explain(err), requestId: r.request_id, attempt, delay },
          'starting the run failed; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  const consumer: Consumer = deps.amqp.consume(deps.amqp.topology.queue, cfg.amqpPrefetch, (d) => {
    const p = handle(d).finally(() => inFlight.delete(p));
    inFlight.add(p);
    return p;
  });
  log.info(
    { queue: deps.amqp.topology.queue, prefetch: cfg.amqpPrefetch, taskQueue: cfg.taskQueue },
    'bridge consuming',
  );

  return {
    stats,
    async close() {
      closing = true;
      await consumer.cancel();
      await Promise.allSettled([...inFlight]);
      await consumer.close();
      await dlq.close();
    },
  };
}
