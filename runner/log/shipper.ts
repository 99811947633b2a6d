/**
 * Ships the LogBuffer to the log service over the bidirectional StreamLogs call.
 *
 * Lines go out in batches: as soon as maxLines lines or maxBytes bytes are waiting, or when the
 * oldest waiting line is flushIntervalMs old, so a chatty build sends few large messages and a
 * quiet one still shows each line promptly. The server answers with the highest sequence
 * number it stored; acknowledged lines leave the buffer.
 *
 * When the stream breaks (server restart, network loss, no acknowledgement for ackTimeoutMs)
 * the shipper reconnects with exponential backoff and jitter and resends from the last
 * acknowledged sequence number: unacknowledged lines are resent (the server drops the ones
 * it already had), acknowledged ones never are. It gives up, with LogServiceUnavailableError,
 * when the service keeps failing without a single acknowledgement for retryForMs. Lines the
 * service refuses for good are replaced by a notice once (see model/log-text.ts), never resent
 * as they were.
 */
import * as grpc from '@grpc/grpc-js';
import type { LogAck__Output, RunnerServiceClient } from '../../model/runner-proto';
import { backoffDelay, sleep, type BackoffPolicy } from '../backoff';
import { diag } from '../diag';
import { LogServiceUnavailableError } from '../errors';
import type { BatchLimits, LogBuffer } from './buffer';
import { describeGrpcError, fatalRpcError, isServiceError } from '../rpc';
import { parseSeqRange, REFUSED_SEQS_TRAILER } from '../../model/log-text';

export interface ShipperSettings {
  address: string;
  jobId: string;
  batch: BatchLimits;
  flushIntervalMs: number;
  /** Lines sent but not acknowledged for this long mean a stuck stream: reconnect. */
  ackTimeoutMs: number;
  /** How long the stream may keep failing without any acknowledgement before giving up. */
  retryForMs: number;
  backoff: BackoffPolicy;
  /** How long to wait for the server to close the stream after everything was acknowledged. */
  closeTimeoutMs?: number;
}

export const DEFAULT_BATCH: BatchLimits = { maxLines: 500, maxBytes: 256 * 1024 };

/** Stream errors a reconnect cannot fix. */
const FATAL_STREAM_CODES = new Set<number>([
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.UNIMPLEMENTED,
]);

type SessionResult = { done: true } | { done: false; error: Error };

export class LogShipper {
  /** Set when a failure started and no acknowledgement arrived since; cleared on every ack. */
  private failingSince: number | undefined;
  private warnedClamp = false;
  /** Last line already replaced by a refusal notice; a refusal at or before it is fatal. */
  private replacedThrough = 0;

  constructor(
    private readonly client: RunnerServiceClient,
    private readonly metadata: () => grpc.Metadata,
    private readonly buffer: LogBuffer,
    private readonly s: ShipperSettings,
  ) {}

  /** Resolves once the buffer is closed and every line acknowledged; rejects on a fatal error. */
  async run(): Promise<void> {
    let attempt = 0;
    while (!this.buffer.isDone) {
      const ackedBefore = this.buffer.ackedThrough;
      const result = await this.session();
      if (result.done) return;
      const err = result.error;
      if (this.replaceRefused(err)) {
        attempt = 0;
        continue;
      }
      if (isServiceError(err) && FATAL_STREAM_CODES.has(err.code))
        throw fatalRpcError('StreamLogs', err, this.s);
      if (this.buffer.ackedThrough > ackedBefore) attempt = 0;
      const now = Date.now();
      this.failingSince ??= now;
      const delay = backoffDelay(attempt++, this.s.backoff);
      if (now - this.failingSince + delay > this.s.retryForMs) {
        throw new LogServiceUnavailableError(
          `gave up streaming logs: the log service at ${this.s.address} failed for ${Math.round((now - this.failingSince) / 1000)}s without storing a line (${describeGrpcError(err)})`,
          'check that the orchestrator is running and that ORCH_CONTACT_ADDR is reachable from this machine',
          { cause: err },
        );
      }
      diag(
        `log stream interrupted (${describeGrpcError(err)}); reconnecting in ${delay}ms, resending from seq ${this.buffer.ackedThrough + 1}`,
      );
      await sleep(delay);
    }
  }

  /**
   * The service refused lines for good (INVALID_ARGUMENT naming them in a trailer): they become
   * a notice in the log and the stream goes on. A range refused again, notice and all, is not
   * retried: the error is then fatal like any other INVALID_ARGUMENT.
   */
  private replaceRefused(err: Error): boolean {
    if (!isServiceError(err) || err.code !== grpc.status.INVALID_ARGUMENT) return false;
    const raw = err.metadata?.get(REFUSED_SEQS_TRAILER)[0];
    const range = typeof raw === 'string' ? parseSeqRange(raw) : undefined;
    if (!range || range.first <= this.replacedThrough) return false;
    const notice = `[solstice: the log service refused this line for good and it was not stored: ${err.details || err.message}]`;
    const replaced = this.buffer.replaceText(range.first, range.last, notice);
    if (replaced === 0) return false;
    this.replacedThrough = range.last;
    diag(
      `the log service refused lines ${range.first}-${range.last} for good (${describeGrpcError(err)}); they are replaced by a notice and the job goes on`,
    );
    return true;
  }

  /** One StreamLogs call, until everything is acknowledged or the call breaks. */
  private async session(): Promise<SessionResult> {
    const wake = this.buffer.changed;
    const call = this.client.streamLogs(this.metadata());
    let error: Error | undefined;
    let serverClosed = false;
    let writeBlocked = false;
    let lastAckAt = performance.now();
    let helloAcked = false;

    call.on('data', (ack: LogAck__Output) => {
      const { clamped } = this.buffer.ack(ack.persistedThroughSeq);
      if (clamped && !this.warnedClamp) {
        this.warnedClamp = true;
        diag(
          `log service acknowledged seq ${ack.persistedThroughSeq}, beyond the last line sent; ignoring the excess`,
        );
      }
      lastAckAt = performance.now();
      helloAcked = true;
      this.failingSince = undefined;
      wake.notify();
    });
    call.on('error', (err: Error) => {
      error ??= err;
      wake.notify();
    });
    call.on('end', () => {
      serverClosed = true;
      wake.notify();
    });
    call.on('drain', () => {
      writeBlocked = false;
      wake.notify();
    });

    // Open with an empty batch: the server authenticates the stream and answers with what it
    // has stored, so a revoked token or a sick server shows even while the job is quiet, and an
    // answer proves the stream healthy (which resets the give-up clock).
    call.write({ jobId: this.s.jobId, lines: [] });
    let sentThrough = this.buffer.ackedThrough;
    let finished = false;
    try {
      for (;;) {
        if (error) return { done: false, error };
        if (this.buffer.isDone) {
          finished = true;
          return await this.close(call, () => serverClosed || error !== undefined);
        }
        if (serverClosed) {
          return {
            done: false,
            error: new Error('the log service ended the stream before acknowledging every line'),
          };
        }
        // The server may acknowledge past what this call sent (lines it stored before a drop).
        sentThrough = Math.max(sentThrough, this.buffer.ackedThrough);
        const now = performance.now();
        const outstanding = sentThrough > this.buffer.ackedThrough || !helloAcked;
        if (outstanding && now - lastAckAt > this.s.ackTimeoutMs) {
          return {
            done: false,
            error: new Error(`no acknowledgement from the log service for ${this.s.ackTimeoutMs}ms`),
          };
        }

        let waitMs: number | undefined;
        const pending = this.buffer.pendingAfter(sentThrough);
        if (pending.lines > 0 && !writeBlocked) {
          const full = pending.lines >= this.s.batch.maxLines || pending.bytes >= this.s.batch.maxBytes;
          const dueAt = (pending.oldestAppendedAt ?? now) + this.s.flushIntervalMs;
          if (full || dueAt <= now || this.buffer.isClosed) {
            const lines = this.buffer.takeBatch(sentThrough, this.s.batch);
            // Start the ack clock when this batch is the first outstanding one.
            if (!outstanding) lastAckAt = now;
            sentThrough = lines[lines.length - 1].seq;
            if (!call.write({ jobId: this.s.jobId, lines })) writeBlocked = true;
            continue;
          }
          waitMs = dueAt - now;
        }
        if (outstanding) {
          const ackDue = lastAckAt + this.s.ackTimeoutMs - now;
          waitMs = waitMs === undefined ? ackDue : Math.min(waitMs, ackDue);
        }
        await wake.wait(waitMs === undefined ? undefined : Math.max(1, Math.ceil(waitMs)));
      }
    } finally {
      call.removeAllListeners();
      // grpc-js still emits 'error' (e.g. CANCELLED) after we stop listening; never let it throw.
      call.on('error', () => undefined);
      if (!finished) call.cancel();
    }
  }

  /** Half-close after the last ack and give the server a moment to end the call cleanly. */
  private async close(
    call: { end(): void; cancel(): void },
    isClosed: () => boolean,
  ): Promise<SessionResult> {
    call.end();
    const deadline = performance.now() + (this.s.closeTimeoutMs ?? 5_000);
    while (!isClosed()) {
      const left = deadline - performance.now();
      if (left <= 0) {
        call.cancel();
        break;
      }
      await this.buffer.changed.wait(left);
    }
    // Every line is stored whatever the close looked like.
    return { done: true };
  }
}
