/**
 * A pipeline with its jobs and their steps, and a job's steps: what `solstice status --json`
 * prints and what the API answers, so both give the same shape.
 */
import type { JobStepRecord, JobStore, LostAttemptRecord } from './job-store';
import { PipelineStore, type PipelineJobRecord, type PipelineRecord } from './pipeline-store';

export interface JobSteps {
  steps: JobStepRecord[];
  lostAttempts: LostAttemptRecord[];
}

/** Every attempt's steps (each says its attempt), and the lost attempts. */
export async function jobSteps(jobs: JobStore, jobId: string | null): Promise<JobSteps> {
  if (!jobId) return { steps: [], lostAttempts: [] };
  const { steps, lost } = await jobs.stepTable(jobId);
  return { steps, lostAttempts: lost };
}

export type PipelineView = PipelineRecord & { jobs: (PipelineJobRecord & JobSteps)[] };

export async function pipelineView(jobs: JobStore, p: PipelineRecord): Promise<PipelineView> {
  const list = await new PipelineStore(jobs.db).listJobs(p.id);
  return {
    ...p,
    jobs: await Promise.all(list.map(async (j) => ({ ...j, ...(await jobSteps(jobs, j.jobId)) }))),
  };
}
