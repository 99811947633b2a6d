/**
 * The webhook outbox: forges do not deliver a webhook again after a failed answer (Gitea,
 * Forgejo and GitHub alike), so a delivery accepted while RabbitMQ cannot take it is written
 * to PostgreSQL (`webhook_outbox`) and answered 202; the drain publishes the rows to the broker
 * in the order they were accepted, once it is back.
 *
 * Exactly once, with any number of ingress replicas: each row is published inside a
 * transaction that holds one advisory lock (one drainer at a time, so the order holds) and
 * deletes the row; a publish that fails rolls the transaction back and the row stays. A crash
 * between the broker's confirm and the commit publishes the row again, under the same message
 * and workflow ids, so the bridge starts no second run.
 */
import type { Db } from '../storage/db';
import type { Logger } from '../platform/logger';
import { describeError } from '../platform/errors';
import { JOB_REQUEST_V1, type JobRequestV1, encodeJobRequest } from '../model/job-request';
import type { Publisher } from './amqp';

/** pg advisory lock key of the drain (any constant unique to this use). */
const DRAIN_LOCK = 0x50_1c_e0_b0;
/** How often a replica looks for rows it or another replica left behind. */
const POLL_MS = 1_000;

export interface Outbox {
  /** True while accepted deliveries wait in the table (new ones must queue behind them). */
  hasPending(): Promise<boolean>;
  /** Durably keeps one request; throws when the database cannot take it. */
  add(r: JobRequestV1): Promise<void>;
  /** Publishes what waits, oldest first, until the table is empty or the broker fails; how many. */
  drain(): Promise<number>;
  /** Asks the background drain to run now. */
  kick(): void;
  close(): Promise<void>;
}

export function createOutbox(db: Db, publisher: Publisher, log: Logger): Outbox {
  let closed = false;
  let running: Promise<number> | undefined;
  let again = false;

  /** Publishes the oldest row, if this replica holds the drain lock; false when there is none. */
  const publishOne = (): Promise<boolean> =>
    db.$transaction(
      async (tx) => {
        const [{ locked }] = await tx.$queryRaw<{ locked: boolean }[]>`
          SELECT pg_try_advisory_xact_lock(${DRAIN_LOCK}::bigint) AS locked`;
        if (!locked) return false;
        const row = await tx.webhookOutbox.findFirst({ orderBy: { id: 'asc' } });
        if (!row) return false;
        await publisher.publish(Buffer.from(row.body), {
          headers: { schema_version: JOB_REQUEST_V1 },
          messageId: row.requestId,
        });
        await tx.webhookOutbox.delete({ where: { id: row.id } });
        return true;
      },
      { timeout: 60_000, maxWait: 10_000 },
    );

  const drainNow = async (): Promise<number> => {
    let n = 0;
    try {
      while (!closed && (await publishOne())) n++;
    } catch (err) {
      log.warn({ err: describeError(err), published: n }, 'webhook outbox: drain stopped; retrying shortly');
    }
    if (n > 0)
      log.info({ published: n }, 'webhook outbox: published deliveries accepted while the broker was down');
    return n;
  };

  const drain = (): Promise<number> => {
    if (running) {
      again = true;
      return running;
    }
    running = drainNow().finally(() => {
      running = undefined;
      if (again && !closed) {
        again = false;
        void drain();
      }
    });
    return running;
  };

  const timer = setInterval(() => void drain(), POLL_MS);
  timer.unref();

  return {
    async hasPending() {
      return (await db.webhookOutbox.count({ take: 1 })) > 0;
    },
    async add(r) {
      await db.webhookOutbox.create({
        data: { requestId: r.request_id, body: new Uint8Array(encodeJobRequest(r)) },
      });
    },
    drain,
    kick: () => void drain(),
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}
