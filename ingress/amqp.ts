/**
 * RabbitMQ, the way every Solstice process uses it: one connection per process, one channel
 * per producer or consumer, the topology of DESIGN.md declared idempotently on every
 * (re)connect, publisher confirms + `mandatory` + persistent messages, and reconnection with
 * exponential backoff and full jitter after the connection or a channel is lost.
 *
 *   exchange <p>.jobs (direct, durable) ──jobrequest.v1──▶ queue <p>.jobs.v1
 *                                              (x-dead-letter-exchange: <p>.dlx)
 *   exchange <p>.dlx (fanout, durable) ─────────────────▶ queue <p>.jobs.v1.dlq
 *
 * `<p>` is the installation's prefix: SOLSTICE_AMQP_PREFIX, or `solstice.<installation id>`,
 * so two installations on one broker and vhost never consume each other's requests (one
 * `solstice up` used to take another's runs off a shared `solstice.jobs.v1`).
 *
 * Every published message carries the W3C trace context (traceparent, tracestate headers) of
 * its publish span, and every delivery is handled inside a consumer span that continues it,
 * so a trace runs from a webhook through the queue into the bridge.
 */
import { randomUUID } from 'node:crypto';
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import type { Logger } from '../platform/logger';
import { DependencyUnavailableError, describeError } from '../platform/errors';
import { extractTraceContext, injectTraceContext, tracer } from '../platform/telemetry';
import { redactUrlPassword } from '../model/redact-url';
import { AMQP_OFF, SETTINGS } from '../platform/config';

export interface Topology {
  prefix: string;
  exchange: string;
  queue: string;
  routingKey: string;
  dlx: string;
  dlq: string;
}

export function topologyFor(prefix: string): Topology {
  return {
    prefix,
    exchange: `${prefix}.jobs`,
    queue: `${prefix}.jobs.v1`,
    routingKey: 'jobrequest.v1',
    dlx: `${prefix}.dlx`,
    dlq: `${prefix}.jobs.v1.dlq`,
  };
}

/**
 * The installation's names on the broker: the explicit prefix, else one from the installation
 * id (read from the database only when needed: a webhook server given the prefix needs none).
 */
export async function installationTopology(
  cfg: { amqpPrefix?: string },
  installationId: () => Promise<string>,
): Promise<Topology> {
  return topologyFor(cfg.amqpPrefix ?? `solstice.${await installationId()}`);
}

/** Header carrying why a message was dead-lettered by a Solstice consumer. */
export const REASON_HEADER = 'x-solstice-reason';

const START_HINT =
  'Start RabbitMQ (it listens on 127.0.0.1:5672 on a standard install) or set AMQP_URL; ' +
  'without it `solstice enqueue --direct` still starts jobs.';

/** The URL with its password replaced, for messages and logs. */
export function redactAmqpUrl(raw: string): string {
  return redactUrlPassword(raw) ?? '<invalid AMQP_URL>';
}

/**
 * One quick attempt (3 s), for callers that start jobs directly when RabbitMQ is not there
 * (`solstice enqueue`, `solstice up`): the connection, or the reason there is none.
 */
export async function connectIfReachable(
  opts: Pick<AmqpOptions, 'url' | 'log' | 'name' | 'topology'>,
): Promise<AmqpConnection | { unreachable: string }> {
  if (opts.url === AMQP_OFF)
    return { unreachable: `the broker is off (${SETTINGS.amqpUrl.env}=${AMQP_OFF})` };
  try {
    return await AmqpConnection.connect({ ...opts, connectTimeoutMs: 3000 });
  } catch (err) {
    return { unreachable: (err as Error).message };
  }
}

export function amqpUnavailable(url: string, cause?: unknown): DependencyUnavailableError {
  return new DependencyUnavailableError('RabbitMQ', redactAmqpUrl(url), START_HINT, { cause });
}

/** Declares the exchanges, queues and bindings; safe to repeat (and done on every connect). */
export async function declareTopology(ch: Channel, t: Topology): Promise<void> {
  await ch.assertExchange(t.exchange, 'direct', { durable: true });
  await ch.assertExchange(t.dlx, 'fanout', { durable: true });
  await ch.assertQueue(t.queue, {
    durable: true,
    arguments: { 'x-dead-letter-exchange': t.dlx },
  });
  await ch.bindQueue(t.queue, t.exchange, t.routingKey);
  await ch.assertQueue(t.dlq, { durable: true });
  await ch.bindQueue(t.dlq, t.dlx, '');
}

/** Exponential backoff with full jitter: a random delay in [base/2, base], base doubling up to `maxMs`. */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random = Math.random,
): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}

export interface AmqpOptions {
  url: string;
  log: Logger;
  /** Shown in the RabbitMQ management UI as the connection name. */
  name: string;
  /** This installation's exchanges and queues (installationTopology). */
  topology: Topology;
  /** First reconnect delay; doubles per failed attempt up to maxReconnectDelayMs. */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  connectTimeoutMs?: number;
}

/** Something that owns a channel and must get a fresh one after every reconnect. */
interface Attachment {
  open(model: ChannelModel): Promise<void>;
  /** The connection went away; drop the channel and fail what waits on it. */
  lost(err: Error): void;
}

export interface PublishOptions {
  exchange?: string;
  routingKey?: string;
  headers?: Record<string, unknown>;
  messageId?: string;
  /** How long to wait for the broker's confirm. */
  timeoutMs?: number;
}

export interface Publisher {
  /** Resolves once the broker confirmed the (persistent, mandatory) message; rejects if it was
   *  nacked, unroutable, not confirmed in time, or the broker is unreachable. */
  publish(body: Buffer, opts?: PublishOptions): Promise<void>;
  close(): Promise<void>;
}

export interface Delivery {
  message: ConsumeMessage;
  ack(): void;
  /** Rejects without requeue: the queue's dead-letter exchange takes it. */
  reject(): void;
  /** Puts it back on the queue. */
  requeue(): void;
  /** False once the channel it came on is gone (the broker will redeliver it). */
  live(): boolean;
}

export interface Consumer {
  /** Stops new deliveries; the channel stays open so in-flight ones can still be acked. */
  cancel(): Promise<void>;
  close(): Promise<void>;
}

export class UnroutableError extends Error {}

/** Ends `span` when `work` settles, recording a failure; passes the result through. */
async function endWith<T>(span: Span, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(err) });
    throw err;
  } finally {
    span.end();
  }
}

function destroySocket(model: ChannelModel, err: Error): void {
  const stream = (model.connection as unknown as { stream?: { destroy(err?: Error): void } }).stream;
  stream?.destroy(err);
}

/** One connection per process; producers and consumers each get their own channel from it. */
export class AmqpConnection {
  private model: ChannelModel | undefined;
  private readonly attachments = new Set<Attachment>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private connecting: Promise<void> | undefined;
  private readonly listeners = new Set<(up: boolean) => void>();
  /** Connections that failed: closing them politely would wait for an answer that never comes. */
  private readonly dead = new WeakSet<ChannelModel>();

  private constructor(private readonly opts: AmqpOptions) {}

  /**
   * Connects and declares the topology. With `waitForFirst` (the default) an unreachable
   * broker is reported at once as DependencyUnavailableError; otherwise the connection keeps
   * retrying in the background and `connected` tells whether it is up right now.
   */
  static async connect(opts: AmqpOptions, { waitForFirst = true } = {}): Promise<AmqpConnection> {
    const conn = new AmqpConnection(opts);
    if (waitForFirst) {
      try {
        await conn.connectOnce();
      } catch (err) {
        throw amqpUnavailable(opts.url, err);
      }
    } else {
      conn.connecting = conn.connectOnce().catch((err: unknown) => conn.scheduleReconnect(err));
    }
    return conn;
  }

  get connected(): boolean {
    return this.model !== undefined;
  }

  get url(): string {
    return redactAmqpUrl(this.opts.url);
  }

  get topology(): Topology {
    return this.opts.topology;
  }

  /** Called with true after every (re)connect and false after every loss. */
  onStateChange(listener: (up: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Breaks the socket, as a broker restart or network cut would; tests use it. */
  simulateConnectionLoss(): void {
    const stream = (
      this.model?.connection as unknown as { stream?: { destroy(err?: Error): void } } | undefined
    )?.stream;
    stream?.destroy(new Error('connection cut (simulated)'));
  }

  private async connectOnce(): Promise<void> {
    const model = await amqp.connect(this.opts.url, {
      timeout: this.opts.connectTimeoutMs ?? 5000,
      clientProperties: { connection_name: this.opts.name },
    });
    try {
      const ch = await model.createChannel();
      await declareTopology(ch, this.opts.topology);
      await ch.close();
    } catch (err) {
      await model.close().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await model.close().catch(() => undefined);
      return;
    }
    model.on('error', (err: Error) => {
      this.dead.add(model);
      this.opts.log.warn({ err: err.message }, 'AMQP connection error');
    });
    model.on('close', (err?: Error) => {
      this.dead.add(model);
      this.onClose(model, err);
    });
    model.on('blocked', (reason: string) => this.opts.log.warn({ reason }, 'RabbitMQ blocked publishing'));
    this.model = model;
    if (this.attempt > 0) this.opts.log.info({ url: this.url }, 'AMQP reconnected');
    this.attempt = 0;
    for (const a of this.attachments) await this.openAttachment(a, model);
    for (const l of this.listeners) l(true);
  }

  private async openAttachment(a: Attachment, model: ChannelModel): Promise<void> {
    try {
      await a.open(model);
    } catch (err) {
      if (this.model !== model || this.dead.has(model)) return; // that connection is gone anyway
      // A channel that cannot be opened on a live connection is a broker-side problem (e.g.
      // a queue declared with other arguments); reconnecting tries again after a backoff.
      this.opts.log.warn({ err: describeError(err) }, 'opening an AMQP channel failed; reconnecting');
      destroySocket(model, new Error(`opening a channel failed: ${describeError(err)}`));
    }
  }

  private onClose(model: ChannelModel, err?: Error): void {
    if (this.model !== model) return;
    this.model = undefined;
    const reason = err ?? new Error('connection closed');
    for (const a of this.attachments) a.lost(reason);
    for (const l of this.listeners) l(false);
    if (this.closed) return;
    this.opts.log.warn({ err: reason.message, url: this.url }, 'AMQP connection lost; reconnecting');
    this.scheduleReconnect(reason);
  }

  private scheduleReconnect(err: unknown): void {
    if (this.closed || this.reconnectTimer) return;
    this.attempt += 1;
    const delay = backoffDelay(
      this.attempt,
      this.opts.reconnectDelayMs ?? 200,
      this.opts.maxReconnectDelayMs ?? 30_000,
    );
    this.opts.log.debug(
      { attempt: this.attempt, delay, err: describeError(err) },
      'AMQP reconnect scheduled',
    );
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connecting = this.connectOnce().catch((e: unknown) => this.scheduleReconnect(e));
    }, delay);
  }

  private attach(a: Attachment): void {
    this.attachments.add(a);
    if (this.model) void this.openAttachment(a, this.model);
  }

  private detach(a: Attachment): void {
    this.attachments.delete(a);
  }

  /** A producer with its own confirm channel. */
  publisher(): Publisher {
    let ch: ConfirmChannel | undefined;
    let opening: Promise<void> | undefined;
    const returned = new Set<string>();
    const pending = new Map<string, (err: Error) => void>();
    const failAll = (err: Error) => {
      for (const fail of pending.values()) fail(err);
      pending.clear();
    };
    const attachment: Attachment = {
      open: async (model) => {
        opening = (async () => {
          const c = await model.createConfirmChannel();
          c.on('error', (err: Error) =>
            this.opts.log.warn({ err: err.message }, 'AMQP publisher channel error'),
          );
          c.on('return', (msg: ConsumeMessage) => {
            if (msg.properties.messageId) returned.add(String(msg.properties.messageId));
          });
          c.on('close', () => {
            if (ch !== c) return;
            ch = undefined;
            failAll(new Error('AMQP channel closed before the broker confirmed'));
            // A channel closed by the broker while the connection lives: open a new one.
            if (this.model === model && this.attachments.has(attachment))
              void this.openAttachment(attachment, model);
          });
          ch = c;
        })();
        await opening;
      },
      lost: (err) => {
        ch = undefined;
        failAll(err);
      },
    };
    const publishOne = async (body: Buffer, opts: PublishOptions): Promise<void> => {
      if (!ch && opening) await opening.catch(() => undefined);
      const c = ch;
      if (!c || !this.model) throw amqpUnavailable(this.opts.url, new Error('not connected'));
      const messageId = opts.messageId ?? randomUUID();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => settle(new Error(`RabbitMQ did not confirm within ${opts.timeoutMs ?? 10_000} ms`)),
          opts.timeoutMs ?? 10_000,
        );
        const key = `${messageId}/${randomUUID()}`;
        const settle = (err?: Error) => {
          if (!pending.delete(key)) return;
          clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        };
        pending.set(key, settle);
        try {
          c.publish(
            opts.exchange ?? this.opts.topology.exchange,
            opts.routingKey ?? this.opts.topology.routingKey,
            body,
            {
              persistent: true,
              mandatory: true,
              contentType: 'application/json',
              messageId,
              timestamp: Math.floor(Date.now() / 1000),
              // The publish span's context, so the consumer continues this trace.
              headers: { ...injectTraceContext(), ...opts.headers },
            },
            (err: unknown) => {
              // The broker sends basic.return before the ack of an unroutable message.
              if (err) settle(new Error(`RabbitMQ refused the message: ${describeError(err)}`));
              else if (returned.delete(messageId))
                settle(new UnroutableError('RabbitMQ could not route the message to any queue'));
              else settle();
            },
          );
        } catch (err) {
          settle(err instanceof Error ? err : new Error(String(err)));
        }
      });
    };
    this.attach(attachment);
    return {
      publish: (body, opts = {}) => {
        const exchange = opts.exchange ?? this.opts.topology.exchange;
        return tracer().startActiveSpan(
          `publish ${exchange}`,
          {
            kind: SpanKind.PRODUCER,
            attributes: {
              'messaging.system': 'rabbitmq',
              'messaging.operation.type': 'send',
              'messaging.destination.name': exchange,
              'messaging.rabbitmq.destination.routing_key': opts.routingKey ?? this.opts.topology.routingKey,
            },
          },
          (span) => endWith(span, publishOne(body, opts)),
        );
      },
      close: async () => {
        this.detach(attachment);
        const c = ch;
        ch = undefined;
        failAll(new Error('publisher closed'));
        await c?.close().catch(() => undefined);
      },
    };
  }

  /**
   * A consumer with its own channel and prefetch. The handler decides the fate of every
   * delivery; after a reconnect, unacknowledged deliveries come back from the broker (with
   * `redelivered` set) and the handler sees them again.
   */
  consume(queue: string, prefetch: number, handler: (d: Delivery) => Promise<void>): Consumer {
    let ch: Channel | undefined;
    let consumerTag: string | undefined;
    let cancelled = false;
    const settleOn = (c: Channel, m: ConsumeMessage, how: 'ack' | 'reject' | 'requeue') => {
      // On a channel that is gone the broker has already put the message back; nothing to do.
      if (ch !== c) return;
      try {
        if (how === 'ack') c.ack(m);
        else c.nack(m, false, how === 'requeue');
      } catch (err) {
        this.opts.log.debug({ err: describeError(err) }, 'settling a delivery on a closed channel');
      }
    };
    const attachment: Attachment = {
      open: async (model) => {
        const c = await model.createChannel();
        c.on('error', (err: Error) =>
          this.opts.log.warn({ err: err.message }, 'AMQP consumer channel error'),
        );
        c.on('close', () => {
          if (ch !== c) return;
          ch = undefined;
          if (this.model === model && this.attachments.has(attachment))
            void this.openAttachment(attachment, model);
        });
        await c.prefetch(Math.max(1, prefetch));
        ch = c;
        if (cancelled) return;
        const ok = await c.consume(queue, (m) => {
          if (!m) return; // consumer cancelled by the broker (queue deleted); reconnect re-declares
          const parent = extractTraceContext(m.properties.headers ?? {});
          const span = tracer().startSpan(
            `process ${queue}`,
            {
              kind: SpanKind.CONSUMER,
              attributes: {
                'messaging.system': 'rabbitmq',
                'messaging.operation.type': 'process',
                'messaging.destination.name': queue,
                'messaging.rabbitmq.redelivered': m.fields.redelivered,
              },
            },
            parent,
          );
          const handled = context.with(trace.setSpan(parent, span), () =>
            handler({
              message: m,
              ack: () => settleOn(c, m, 'ack'),
              reject: () => settleOn(c, m, 'reject'),
              requeue: () => settleOn(c, m, 'requeue'),
              live: () => ch === c,
            }),
          );
          void endWith(span, handled).catch((err: unknown) => {
            this.opts.log.error({ err: describeError(err) }, 'AMQP handler failed; requeueing');
            settleOn(c, m, 'requeue');
          });
        });
        consumerTag = ok.consumerTag;
      },
      lost: () => {
        ch = undefined;
      },
    };
    this.attach(attachment);
    return {
      cancel: async () => {
        cancelled = true;
        const c = ch;
        if (c && consumerTag) await c.cancel(consumerTag).catch(() => undefined);
      },
      close: async () => {
        cancelled = true;
        this.detach(attachment);
        const c = ch;
        ch = undefined;
        await c?.close().catch(() => undefined);
      },
    };
  }

  /** A short-lived channel for one-off questions (queue depth, consumer count). */
  async withChannel<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    if (!this.model) throw amqpUnavailable(this.opts.url, new Error('not connected'));
    const ch = await this.model.createChannel();
    ch.on('error', () => undefined);
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    await this.connecting?.catch(() => undefined);
    const model = this.model;
    this.model = undefined;
    for (const a of this.attachments) a.lost(new Error('AMQP connection closed'));
    this.attachments.clear();
    if (model && !this.dead.has(model)) {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          destroySocket(model, new Error('closing timed out'));
          resolve();
        }, 5000);
      });
      await Promise.race([model.close().catch(() => undefined), gaveUp]);
      clearTimeout(timer);
    }
  }
}
