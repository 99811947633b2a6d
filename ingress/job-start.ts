/**
 * Starts a bare JobWorkflow with a fresh job id (tests, benchmarks). Pipelines start their jobs
 * as child workflows; JobRequests from the queue start pipelines (pipeline-start.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Config } from '../platform/config';
import { startWithSearchAttributes } from './search-attributes';
import type { JobInput, JobSource } from '../model/domain';
import { startWorkflow } from './start-workflow';
import { readableWorkflowId } from '../model/job-request';
import { runDetails, runSummary, searchAttributesFor } from '../workflows/web-ui';

export interface JobRequest {
  source: JobSource;
  repoUrl: string;
  commitSha: string;
  ref?: string;
  label?: string;
  timeoutMs?: number;
}

type StartConfig = Pick<Config, 'taskQueue' | 'jobTimeoutMs' | 'bootTimeoutMs'> &
  Partial<Pick<Config, 'publicUrl'>>;

export function jobWorkflowId(req: Pick<JobRequest, 'repoUrl' | 'commitSha'>, jobId: string): string {
  return readableWorkflowId('job', req, jobId);
}

function jobInput(cfg: StartConfig, req: JobRequest, jobId: string): JobInput {
  return {
    jobId,
    source: req.source,
    repoUrl: req.repoUrl,
    commitSha: req.commitSha,
    ref: req.ref,
    label: req.label ?? 'local',
    timeoutMs: req.timeoutMs ?? cfg.jobTimeoutMs,
    bootTimeoutMs: cfg.bootTimeoutMs,
    maxMachineAttempts: 2,
  };
}

export async function startJob(
  client: Client,
  cfg: StartConfig,
  req: JobRequest,
  jobId: string = randomUUID(),
): Promise<{ jobId: string; workflowId: string; runId: string }> {
  const workflowId = jobWorkflowId(req, jobId);
  const input = jobInput(cfg, req, jobId);
  const handle = await startWithSearchAttributes(
    searchAttributesFor({ ...input, job: 'job', state: 'queued' }),
    (typedSearchAttributes) =>
      startWorkflow(client, 'JobWorkflow', {
        taskQueue: cfg.taskQueue,
        workflowId,
        args: [input],
        typedSearchAttributes,
        staticSummary: runSummary({ ...input, job: 'job' }),
        staticDetails: runDetails({ ...input, jobId, publicUrl: cfg.publicUrl }),
      }),
  );
  return { jobId, workflowId, runId: handle.firstExecutionRunId };
}
