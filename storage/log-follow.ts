/**
 * Reads a job's log from the database, optionally following it until the job ends. Polling,
 * woken early by PostgreSQL notifications when lines are stored, keeps this independent of
 * which process runs the log service.
 */
import type { JobRecord, JobStore, LogLineRecord } from './job-store';
import { FINAL_STATES } from '../model/domain';
import type { EventStream } from '../platform/event-stream';

export interface FollowOptions {
  follow: boolean;
  pollMs?: number;
  signal?: AbortSignal;
  /** Start after this sequence number (a page that already shows the lines before it). */
  after?: number;
  /** False: poll only, ignoring notifications (bench:logs compares both). */
  wake?: boolean;
}

/**
 * Between reads a follower waits for the poll interval or, sooner, for lines of the job being
 * stored (pg-wakeups.ts) but never less than this after its previous read: a busy log is read at
 * most this often, each read bringing new lines, where a quiet one is polled as before.
 */
export const FOLLOW_MIN_GAP_MS = 50;

/**
 * A job's log a page (up to 2000 lines, as stored) at a time. Readers take a page whole (one
 * write, one event): yielding a line at a time cost more CPU than reading the lines did.
 */
export async function* readLogPages(
  jobs: JobStore,
  jobId: string,
  opts: FollowOptions,
): AsyncGenerator<LogLineRecord[]> {
  const pollMs = opts.pollMs ?? 200;
  let after = opts.after ?? 0;
  const waiter = opts.follow && opts.wake !== false ? jobs.logs.wakeups.follow(jobId) : undefined;
  try {
    for (;;) {
      const readAt = performance.now();
      // Read the state before the lines: if the job was final before this page, the page is the last.
      const job = opts.follow ? await jobs.getJob(jobId) : undefined;
      for (;;) {
        const page = await jobs.logLinesAfter(jobId, after, 2000);
        if (page.length > 0) yield page;
        if (page.length > 0) after = page[page.length - 1].seq;
        if (page.length < 2000) break;
      }
      // No job row yet means the workflow has not recorded it yet: keep waiting.
      if (!opts.follow || (job && FINAL_STATES.includes(job.state)) || opts.signal?.aborted) return;
      const gap = FOLLOW_MIN_GAP_MS - (performance.now() - readAt);
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      const rest = Math.max(0, pollMs - Math.max(0, gap));
      if (waiter) await waiter.wait(rest, opts.signal);
      else await new Promise((r) => setTimeout(r, rest));
    }
  } finally {
    waiter?.release();
  }
}

/**
 * Follows a job's log onto a server-sent event stream, a page per `lines` event (a JSON array of
 * `row` of each line) whose id is the page's last seq: a client that reconnects with that id as
 * Last-Event-ID resumes after it. Resolves once the job is final and every line sent (true), or
 * once the client has gone away (false).
 */
export async function sendLogLines(
  stream: EventStream,
  jobs: JobStore,
  jobId: string,
  opts: { after: number; pollMs: number },
  row: (line: LogLineRecord) => object,
): Promise<boolean> {
  for await (const page of readLogPages(jobs, jobId, { follow: true, ...opts, signal: stream.signal })) {
    if (stream.signal.aborted) return false;
    await stream.send('lines', JSON.stringify(page.map(row)), page[page.length - 1].seq);
  }
  return !stream.signal.aborted;
}

export async function waitForFinalState(jobs: JobStore, jobId: string, pollMs = 250): Promise<JobRecord> {
  for (;;) {
    const job = await jobs.getJob(jobId);
    if (job && FINAL_STATES.includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
