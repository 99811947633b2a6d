/**
 * Reads a job's log from the database, optionally following it until the job ends.
 * Polling keeps this independent of which process runs the log service.
 */
import type { JobRecord, JobStore, LogLineRecord } from './job-store';
import { FINAL_STATES } from '../model/domain';

export interface FollowOptions {
  follow: boolean;
  pollMs?: number;
  signal?: AbortSignal;
  /** Start after this sequence number (a page that already shows the lines before it). */
  after?: number;
}

export async function* readLog(
  jobs: JobStore,
  jobId: string,
  opts: FollowOptions,
): AsyncGenerator<LogLineRecord> {
  for await (const page of readLogPages(jobs, jobId, opts)) yield* page;
}

/** As readLog, a page (up to 2000 lines) at a time: for readers that send lines in batches. */
export async function* readLogPages(
  jobs: JobStore,
  jobId: string,
  opts: FollowOptions,
): AsyncGenerator<LogLineRecord[]> {
  const pollMs = opts.pollMs ?? 200;
  let after = opts.after ?? 0;
  for (;;) {
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
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function waitForFinalState(jobs: JobStore, jobId: string, pollMs = 250): Promise<JobRecord> {
  for (;;) {
    const job = await jobs.getJob(jobId);
    if (job && FINAL_STATES.includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
