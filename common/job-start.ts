/**
 * Starts a JobWorkflow. Two ways:
 *  - `startJob`: a fresh, random job id (direct `solstice enqueue --direct`, tests);
 *  - `startJobForRequest`: ids derived from a JobRequest v1, so starting the same request
 *    twice (a redelivered AMQP message, a repeated webhook) starts one run only.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { Config } from './config';
import { jobIdFor, workflowIdFor, type JobRequestV1 } from './job-request';
import type { JobInput, JobSource } from '../workflows/types';

export interface JobRequest {
  source: JobSource;
  repoUrl: string;
  commitSha: string;
  ref?: string;
  label?: string;
  timeoutMs?: number;
}

type StartConfig = Pick<Config, 'taskQueue' | 'jobTimeoutMs' | 'bootTimeoutMs'>;

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
  const handle = await client.workflow.start('JobWorkflow', {
    taskQueue: cfg.taskQueue,
    workflowId,
    args: [jobInput(cfg, req, jobId)],
  });
  return { jobId, workflowId, runId: handle.firstExecutionRunId };
}

/** The ids a JobRequest v1 stands for; the CLI prints them before the bridge has started anything. */
export function idsForRequest(r: JobRequestV1): { workflowId: string; jobId: string } {
  const workflowId = workflowIdFor(r);
  return { workflowId, jobId: jobIdFor(workflowId) };
}

/**
 * Starts the run a JobRequest v1 asks for, at most once. A second start of the same request
 * — even after the first run has finished — is refused by Temporal (REJECT_DUPLICATE) and
 * reported here as `started: false`: the request is already taken care of.
 */
export async function startJobForRequest(
  client: Client,
  cfg: StartConfig,
  r: JobRequestV1,
): Promise<{ jobId: string; workflowId: string; started: boolean }> {
  const { workflowId, jobId } = idsForRequest(r);
  const input = jobInput(
    cfg,
    { source: r.source, repoUrl: r.repo_url, commitSha: r.commit_sha, ref: r.ref, label: r.runs_on },
    jobId,
  );
  try {
    await client.workflow.start('JobWorkflow', {
      taskQueue: cfg.taskQueue,
      workflowId,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      args: [input],
      memo: { requestId: r.request_id, ...(r.delivery_id ? { deliveryId: r.delivery_id } : {}) },
    });
    return { jobId, workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { jobId, workflowId, started: false };
    throw err;
  }
}
