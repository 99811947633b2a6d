/**
 * Turns incoming log batches into stored lines, exactly once and in order. Lines carry a
 * dense per-job sequence number; we store only the contiguous run that follows what is
 * already stored and acknowledge how far that run goes, so a runner that lost its stream
 * resends from there: no duplicates, no gaps.
 *
 * Text is made storable again here (model/log-text.ts) and masked again with the secrets the
 * service knows: the runner did both already; this is defence in depth against an old or
 * broken runner. Lines the database still refuses for good end the stream with
 * LogBatchRefusedError, never a retryable status.
 */
import type { JobStore, LogLineRecord } from '../storage/job-store';
import type { SecretMasker } from '../model/secret-mask';
import { instruments } from '../platform/metrics';
import { storableLogText } from '../model/log-text';

/**
 * The database refused these lines for what they contain, so sending them again cannot help:
 * SQLSTATE class 22 (data exception, e.g. a byte the encoding cannot hold) or 54 (a limit
 * exceeded). Anything else (connection lost, pool exhausted) is worth a retry.
 */
function refusedForGood(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code);
}

/** Lines the store refused for good; the runner replaces them with a notice and goes on. */
export class LogBatchRefusedError extends Error {
  constructor(
    readonly firstSeq: number,
    readonly lastSeq: number,
    cause: unknown,
  ) {
    super(
      `the log store refused lines ${firstSeq}-${lastSeq}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

export interface IncomingLine {
  seq: number;
  stream: string;
  text: string;
  timeUnixMs: number;
}

export class LogIngest {
  /** Highest contiguous seq stored; starts from the database so restarts of either side are safe. */
  private constructor(
    private readonly jobs: JobStore,
    private readonly jobId: string,
    private through: number,
    private readonly secrets: SecretMasker | undefined,
  ) {}

  static async open(jobs: JobStore, jobId: string, secrets?: SecretMasker): Promise<LogIngest> {
    return new LogIngest(jobs, jobId, await jobs.lastLogSeq(jobId), secrets);
  }

  get persistedThrough(): number {
    return this.through;
  }

  /**
   * The store refused a run for what it contains: store its lines one by one up to the first
   * refused line, so only that line is named and the lines around it are kept.
   */
  private async isolateRefused(run: LogLineRecord[]): Promise<void> {
    for (const line of run) {
      try {
        await this.jobs.appendLogLines(this.jobId, [line]);
      } catch (err) {
        if (!refusedForGood(err)) throw err;
        this.through = line.seq - 1;
        throw new LogBatchRefusedError(line.seq, line.seq, err);
      }
    }
  }

  /** Stores what extends the contiguous run; returns the new acknowledgement. */
  async accept(lines: IncomingLine[]): Promise<number> {
    const sorted = [...lines].sort((a, b) => a.seq - b.seq);
    const run: LogLineRecord[] = [];
    let next = this.through + 1;
    for (const l of sorted) {
      if (l.seq < next) continue; // already stored: a resend
      if (l.seq > next) break; // a gap: wait for the runner to resend from our ack
      const storable = storableLogText(l.text);
      const text = this.secrets ? this.secrets.maskLine(storable) : storable;
      run.push({ seq: l.seq, stream: l.stream, text, time: new Date(l.timeUnixMs || Date.now()) });
      next += 1;
    }
    if (run.length > 0) {
      try {
        await this.jobs.appendLogLines(this.jobId, run);
      } catch (err) {
        if (!refusedForGood(err)) throw err;
        await this.isolateRefused(run);
      }
      this.through = next - 1;
      instruments().logBytes.add(run.reduce((n, l) => n + Buffer.byteLength(l.text, 'utf8'), 0));
    }
    return this.through;
  }
}
