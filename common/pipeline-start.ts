/**
 * Starts a PipelineWorkflow: one per triggering event. Lives next to job-start.ts (which
 * starts a bare JobWorkflow and stays for the AMQP bridge and tests).
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Config } from './config';
import type { PipelineJobRecord, PipelineRecord } from './pipeline-store';
import type { JobSource, PipelineEvent, PipelineInput } from '../workflows/types';

export interface PipelineRequest {
  source: JobSource;
  event?: PipelineEvent;
  repoUrl: string;
  commitSha: string;
  ref?: string;
  /** runs-on of a job.sh pipeline's one job. */
  label?: string;
  /** A job's timeout when the workflow file gives none. */
  timeoutMs?: number;
  rerunOf?: string;
  reuse?: Record<string, string>;
}

type StartConfig = Pick<Config, 'taskQueue' | 'jobTimeoutMs' | 'bootTimeoutMs'>;

/** `pipeline/<repo>/<sha>/<pipeline id>`: readable in the Temporal Web UI, unique per event. */
export function pipelineWorkflowId(
  req: Pick<PipelineRequest, 'repoUrl' | 'commitSha'>,
  pipelineId: string,
): string {
  const repo =
    req.repoUrl
      .replace(/\.git$/, '')
      .split(/[/:]/)
      .filter(Boolean)
      .pop() ?? 'repo';
  return `pipeline/${repo}/${req.commitSha.slice(0, 12)}/${pipelineId}`;
}

export function pipelineInput(cfg: StartConfig, req: PipelineRequest, pipelineId: string): PipelineInput {
  return {
    pipelineId,
    source: req.source,
    event: req.event ?? (req.source === 'manual' ? 'manual' : 'push'),
    repoUrl: req.repoUrl,
    commitSha: req.commitSha,
    ...(req.ref ? { ref: req.ref } : {}),
    ...(req.label ? { label: req.label } : {}),
    timeoutMs: req.timeoutMs ?? cfg.jobTimeoutMs,
    bootTimeoutMs: cfg.bootTimeoutMs,
    maxMachineAttempts: 2,
    ...(req.rerunOf ? { rerunOf: req.rerunOf } : {}),
    ...(req.reuse ? { reuse: req.reuse } : {}),
  };
}

export async function startPipeline(
  client: Client,
  cfg: StartConfig,
  req: PipelineRequest,
  pipelineId: string = randomUUID(),
): Promise<{ pipelineId: string; workflowId: string; runId: string }> {
  const workflowId = pipelineWorkflowId(req, pipelineId);
  const handle = await client.workflow.start('PipelineWorkflow', {
    taskQueue: cfg.taskQueue,
    workflowId,
    args: [pipelineInput(cfg, req, pipelineId)],
  });
  return { pipelineId, workflowId, runId: handle.firstExecutionRunId };
}

/**
 * Starts a new pipeline that reruns `previous` at the same commit. With `failedOnly`, the jobs
 * that succeeded are not run again (the new pipeline records their earlier runs), so only
 * the failed, errored, cancelled and skipped jobs run: the failed ones and what depends on them.
 */
export async function rerunPipeline(
  client: Client,
  cfg: StartConfig,
  previous: Pick<PipelineRecord, 'id' | 'source' | 'event' | 'repoUrl' | 'commitSha' | 'ref'>,
  previousJobs: Pick<PipelineJobRecord, 'name' | 'state' | 'jobId'>[],
  opts: { failedOnly: boolean },
): Promise<{ pipelineId: string; workflowId: string; reused: string[] }> {
  const reuse: Record<string, string> = {};
  if (opts.failedOnly) {
    for (const j of previousJobs) if (j.state === 'success' && j.jobId) reuse[j.name] = j.jobId;
  }
  const started = await startPipeline(client, cfg, {
    source: previous.source as JobSource,
    // A rerun is asked for by hand, but it reruns the original event's jobs.
    event: previous.event as PipelineEvent,
    repoUrl: previous.repoUrl,
    commitSha: previous.commitSha,
    ...(previous.ref ? { ref: previous.ref } : {}),
    rerunOf: previous.id,
    ...(opts.failedOnly ? { reuse } : {}),
  });
  return { pipelineId: started.pipelineId, workflowId: started.workflowId, reused: Object.keys(reuse) };
}
