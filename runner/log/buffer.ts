/**
 * The runner's log: every line gets the next sequence number of the job (dense, 1-based,
 * across stdout, stderr and the runner's own lines, in the order they were read) and stays
 * here until the log service acknowledged it as durably stored. After a broken stream the
 * shipper resends exactly the lines after the last acknowledgement.
 *
 * Memory is bounded by back-pressure: when the unacknowledged lines exceed `highWaterBytes`
 * the buffer reports "pressure" and the producer (the job script's pipes) stops reading, so
 * the script blocks on write instead of the runner growing without limit; below
 * `lowWaterBytes` reading resumes.
 */
import type { LogStream__Output } from '../../model/runner-proto';
import { ChangeSignal } from '../signal';

export type LineStream = Exclude<LogStream__Output, 'LOG_STREAM_UNSPECIFIED'>;

export interface BufferedLine {
  seq: number;
  stream: LineStream;
  text: string;
  timeUnixMs: number;
}

interface Entry extends BufferedLine {
  /** Bytes this line accounts for (its UTF-8 text plus framing overhead). */
  bytes: number;
  /** Total bytes appended up to and including this line: unsent bytes are a subtraction. */
  cumulativeBytes: number;
  /** Monotonic time of append (performance.now()), for the flush interval. */
  appendedAt: number;
}

export interface LogBufferOptions {
  /** Sequence number of the first line: 1, or one past what a previous runner already stored. */
  firstSeq: number;
  highWaterBytes?: number;
  lowWaterBytes?: number;
}

/** Called with true when the producer should stop reading, false when it may resume. */
export type PressureHandler = (paused: boolean) => void;

export interface BatchLimits {
  maxLines: number;
  maxBytes: number;
}

/** Rough per-line protobuf overhead (tags, varints for seq/stream/time), for byte accounting. */
const LINE_OVERHEAD_BYTES = 24;

/**
 * A line waits in the runner for everything before it to be stored, so this window over the
 * storing rate is what `solstice logs -f` lags behind a job that prints flat out (1 MiB at
 * 10 MiB/s: 0.1 s); it was 2 MiB, which kept the follow p99 above 250 ms.
 */
export const DEFAULT_HIGH_WATER_BYTES = 1024 * 1024;

export class LogBuffer {
  /** Unacknowledged lines in seq order; entries before `head` are acknowledged garbage. */
  private entries: Entry[] = [];
  private head = 0;
  private nextSeq: number;
  private acked: number;
  private appendedBytes = 0;
  private ackedBytes = 0;
  private closed = false;
  private paused = false;
  private readonly highWater: number;
  private readonly lowWater: number;
  private pressureHandler: PressureHandler | undefined;
  /** Woken on every append, ack and close. */
  readonly changed = new ChangeSignal();

  constructor(opts: LogBufferOptions) {
    if (!Number.isInteger(opts.firstSeq) || opts.firstSeq < 1) throw new RangeError('firstSeq must be >= 1');
    this.nextSeq = opts.firstSeq;
    this.acked = opts.firstSeq - 1;
    this.highWater = opts.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES;
    this.lowWater = opts.lowWaterBytes ?? Math.floor(this.highWater / 2);
  }

  /** Adds a line and returns its sequence number. */
  append(stream: LineStream, text: string, timeUnixMs: number = Date.now()): number {
    if (this.closed) throw new Error('LogBuffer.append after close()');
    const bytes = Buffer.byteLength(text) + LINE_OVERHEAD_BYTES;
    this.appendedBytes += bytes;
    const seq = this.nextSeq++;
    this.entries.push({
      seq,
      stream,
      text,
      timeUnixMs,
      bytes,
      cumulativeBytes: this.appendedBytes,
      appendedAt: performance.now(),
    });
    this.updatePressure();
    this.changed.notify();
    return seq;
  }

  /**
   * Who to tell when reading should pause or resume (the running script's pipes). Told at once
   * if the buffer is already over the high-water mark.
   */
  setPressureHandler(handler: PressureHandler | undefined): void {
    this.pressureHandler = handler;
    if (handler && this.paused) handler(true);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** No more lines will come (the script and the runner's own steps are done). */
  close(): void {
    this.closed = true;
    this.changed.notify();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Highest sequence number assigned so far (firstSeq - 1 when none). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  get ackedThrough(): number {
    return this.acked;
  }

  /** Closed and every line acknowledged: the log is complete on the server. */
  get isDone(): boolean {
    return this.closed && this.acked === this.lastSeq;
  }

  get unackedBytes(): number {
    return this.appendedBytes - this.ackedBytes;
  }

  /**
   * The server stored everything through `seq`. Acks only move forward; one beyond what we
   * sent is clamped (and reported) rather than trusted, so a confused server cannot make the
   * runner skip lines.
   */
  ack(seq: number): { clamped: boolean } {
    const target = Math.min(seq, this.lastSeq);
    if (target <= this.acked) return { clamped: seq > this.lastSeq };
    const drop = target - this.acked;
    const last = this.entries[this.head + drop - 1];
    this.ackedBytes = last.cumulativeBytes;
    this.head += drop;
    this.acked = target;
    // Compact now and then instead of shifting the array on every ack.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    this.updatePressure();
    this.changed.notify();
    return { clamped: seq > this.lastSeq };
  }

  /**
   * Replaces the text of the unacknowledged lines `first`..`last` (lines the log service refused
   * for good), keeping their sequence numbers so the log stays dense. Their byte accounting is
   * left as it was: the notice is shorter than most refused lines and accounting only steers
   * back-pressure. Returns how many lines were replaced.
   */
  replaceText(first: number, last: number, text: string): number {
    let replaced = 0;
    for (let seq = Math.max(first, this.acked + 1); seq <= Math.min(last, this.lastSeq); seq++) {
      const e = this.entryFor(seq);
      if (!e) continue;
      e.text = text;
      replaced++;
    }
    this.changed.notify();
    return replaced;
  }

  /** Lines after `afterSeq` not yet sent, and their bytes. */
  pendingAfter(afterSeq: number): { lines: number; bytes: number; oldestAppendedAt?: number } {
    const first = this.entryFor(afterSeq + 1);
    if (!first) return { lines: 0, bytes: 0 };
    return {
      lines: this.lastSeq - afterSeq,
      bytes: this.appendedBytes - (first.cumulativeBytes - first.bytes),
      oldestAppendedAt: first.appendedAt,
    };
  }

  /**
   * The next batch after `afterSeq`: up to maxLines lines and maxBytes bytes, but always at
   * least one line when there is one (a single line is at most MAX_LINE_BYTES).
   */
  takeBatch(afterSeq: number, limits: BatchLimits): BufferedLine[] {
    const batch: BufferedLine[] = [];
    let bytes = 0;
    for (let seq = afterSeq + 1; seq <= this.lastSeq && batch.length < limits.maxLines; seq++) {
      const e = this.entryFor(seq);
      if (!e) break;
      if (batch.length > 0 && bytes + e.bytes > limits.maxBytes) break;
      bytes += e.bytes;
      batch.push({ seq: e.seq, stream: e.stream, text: e.text, timeUnixMs: e.timeUnixMs });
    }
    return batch;
  }

  private entryFor(seq: number): Entry | undefined {
    if (seq <= this.acked || seq > this.lastSeq) return undefined;
    return this.entries[this.head + (seq - this.acked - 1)];
  }

  private updatePressure(): void {
    const unacked = this.unackedBytes;
    if (!this.paused && unacked > this.highWater) {
      this.paused = true;
      this.pressureHandler?.(true);
    } else if (this.paused && unacked <= this.lowWater) {
      this.paused = false;
      this.pressureHandler?.(false);
    }
  }
}
