/** Starts a JobWorkflow for a request; used by `solstice enqueue` and (later) the AMQP bridge. */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Config } from './config';
import type { JobInput, JobSource } from '../workflows/types';

export interface JobRequest {
  source: JobSource;
  repoUrl: string;
  commitSha: string;
  ref?: string;
  label?: string;
  timeoutMs?: number;
}

/** Readable in the Temporal Web UI: which repository and commit, then the unique job id. */
export function jobWorkflowId(req: Pick<JobRequest, 'repoUrl' | 'commitSha'>, jobId: string): string {
  const repo =
    req.repoUrl
      .replace(/\.git$/, '')
      .split(/[/:]/)
      .filter(Boolean)
      .pop() ?? 'repo';
  return `job/${repo}/${req.commitSha.slice(0, 12)}/${jobId}`;
}

export async function startJob(
  client: Client,
  cfg: Pick<Config, 'taskQueue' | 'jobTimeoutMs' | 'bootTimeoutMs'>,
  req: JobRequest,
  jobId: string = randomUUID(),
): Promise<{ jobId: string; workflowId: string; runId: string }> {
  const input: JobInput = {
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
  const workflowId = jobWorkflowId(req, jobId);
  const handle = await client.workflow.start('JobWorkflow', {
    taskQueue: cfg.taskQueue,
    workflowId,
    args: [input],
  });
  return { jobId, workflowId, runId: handle.firstExecutionRunId };
}
