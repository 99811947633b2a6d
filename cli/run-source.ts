/**
 * Where the CLI reads runs from: the database directly (an operator on the host), or the HTTP
 * API (SOLSTICE_API_URL with SOLSTICE_TOKEN, cli/remote.ts). Following, status and logs are
 * written once against this and print the same either way.
 */
import type { JobRecord, LogLineRecord, LostAttemptRecord, StepTable } from '../storage/job-store';
import { readLogPages } from '../storage/log-follow';
import { PipelineStore, type PipelineJobRecord, type PipelineRecord } from '../storage/pipeline-store';
import { CapacityStore } from '../capacity/store';
import type { Store } from './context';

export interface RunSource {
  getPipeline(id: string): Promise<PipelineRecord | undefined>;
  listJobs(pipelineId: string): Promise<PipelineJobRecord[]>;
  getJob(id: string): Promise<JobRecord | undefined>;
  stepTable(jobId: string): Promise<StepTable>;
  listLostAttempts(jobId: string): Promise<LostAttemptRecord[]>;
  /**
   * The log's lines a page at a time, in order; with follow, until the job has ended and every
   * line is read. Pages, not lines: a reader writes a page at once, where a write (and an await)
   * a line cost more than reading the log.
   */
  readLogPages(jobId: string, opts: { follow: boolean; pollMs?: number }): AsyncIterable<LogLineRecord[]>;
  countLogLines(jobId: string): Promise<number>;
  /** A queued job's place among the jobs waiting for a machine of its label. */
  queuePosition(jobId: string): Promise<number | undefined>;
  pipelineOfJob(jobId: string): Promise<PipelineRecord | undefined>;
}

export function storeSource(store: Store): RunSource {
  const pipelines = new PipelineStore(store.db);
  return {
    getPipeline: (id) => pipelines.getPipeline(id),
    listJobs: (id) => pipelines.listJobs(id),
    getJob: (id) => store.jobs.getJob(id),
    stepTable: (id) => store.jobs.stepTable(id),
    listLostAttempts: (id) => store.jobs.listLostAttempts(id),
    readLogPages: (id, opts) => readLogPages(store.jobs, id, opts),
    countLogLines: (id) => store.jobs.countLogLines(id),
    queuePosition: (id) => new CapacityStore(store.db).queuePosition(id),
    pipelineOfJob: (id) => pipelines.pipelineOfJob(id),
  };
}

const FINAL = ['success', 'failure', 'error', 'cancelled'];

export async function waitForJobEnd(source: RunSource, jobId: string, pollMs = 250): Promise<JobRecord> {
  for (;;) {
    const job = await source.getJob(jobId);
    if (job && FINAL.includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
