/**
 * Turns incoming log batches into stored lines, exactly once and in order. Lines carry a
 * dense per-job sequence number; we store only the contiguous run that follows what is
 * already stored and acknowledge how far that run goes, so a runner that lost its stream
 * resends from there: no duplicates, no gaps.
 *
 * Lines are masked again here with the secrets the service knows (the runner already masked
 * them with the job's own; this is defence in depth against an old or broken runner).
 */
import type { JobStore, LogLineRecord } from '../storage/job-store';
import type { SecretMasker } from '../model/secret-mask';
import { instruments } from '../platform/metrics';

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

  /** Stores what extends the contiguous run; returns the new acknowledgement. */
  async accept(lines: IncomingLine[]): Promise<number> {
    const sorted = [...lines].sort((a, b) => a.seq - b.seq);
    const run: LogLineRecord[] = [];
    let next = this.through + 1;
    for (const l of sorted) {
      if (l.seq < next) continue; // already stored: a resend
      if (l.seq > next) break; // a gap: wait for the runner to resend from our ack
      const text = this.secrets ? this.secrets.maskLine(l.text) : l.text;
      run.push({ seq: l.seq, stream: l.stream, text, time: new Date(l.timeUnixMs || Date.now()) });
      next += 1;
    }
    if (run.length > 0) {
      await this.jobs.appendLogLines(this.jobId, run);
      this.through = next - 1;
      instruments().logBytes.add(run.reduce((n, l) => n + Buffer.byteLength(l.text, 'utf8'), 0));
    }
    return this.through;
  }
}
