/**
 * Starts a PipelineWorkflow: one per triggering event. Lives next to job-start.ts (which
 * starts a bare JobWorkflow, for tests and benchmarks).
 */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { Config } from '../platform/config';
import {
  DEFAULT_DEDUPE_WINDOW_MS,
  eventKeyOf,
  jobIdFor,
  readableWorkflowId,
  workflowIdFor,
  type JobRequestV1,
} from '../model/job-request';
import type { PipelineJobRecord, PipelineRecord } from '../storage/pipeline-store';
import { startWithSearchAttributes } from './search-attributes';
import type { JobSource, PipelineEvent, PipelineInput } from '../model/domain';
import { startWorkflow } from './start-workflow';
import { runDetails, runSummary, searchAttributesFor } from '../workflows/web-ui';

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
  /** Run one Actions workflow as workflow_dispatch (`solstice enqueue --workflow`). */
  dispatch?: { workflow: string; inputs: Record<string, string> };
  /** A push: what its branch pointed at before (Actions `paths` filters). */
  beforeSha?: string;
}

type StartConfig = Pick<Config, 'taskQueue' | 'jobTimeoutMs' | 'bootTimeoutMs'> &
  Partial<
    Pick<Config, 'publicUrl' | 'webhookLocalRepos' | 'webhookDedupeWindowMs' | 'forgeStatusDeadlineMs'>
  >;

/**
 * What git may use to fetch the repository. A forge's repository is fetched over the
 * network: https and ssh, and plain http when its clone URL is one (a forge served over http;
 * the webhook has already checked the URL is on the forge's host). A local path only when an
 * operator enqueued it, or configured webhooks to allow local repositories (tests,
 * experiments). `fd`, `ext` and the rest never.
 */
export function gitProtocolsFor(cfg: StartConfig, source: JobSource, repoUrl = ''): string[] {
  const network = repoUrl.startsWith('http://') ? ['https', 'ssh', 'http'] : ['https', 'ssh'];
  return source === 'manual' || cfg.webhookLocalRepos === true ? [...network, 'file'] : network;
}

/** `pipeline/<repo>/<sha>/<pipeline id>`: readable in the Temporal Web UI, unique per event. */
export function pipelineWorkflowId(
  req: Pick<PipelineRequest, 'repoUrl' | 'commitSha'>,
  pipelineId: string,
): string {
  return readableWorkflowId('pipeline', req, pipelineId);
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
    gitProtocols: gitProtocolsFor(cfg, req.source, req.repoUrl),
    timeoutMs: req.timeoutMs ?? cfg.jobTimeoutMs,
    bootTimeoutMs: cfg.bootTimeoutMs,
    maxMachineAttempts: 2,
    ...(req.rerunOf ? { rerunOf: req.rerunOf } : {}),
    ...(req.reuse ? { reuse: req.reuse } : {}),
    ...(req.dispatch ? { dispatch: req.dispatch } : {}),
    ...(req.beforeSha ? { beforeSha: req.beforeSha } : {}),
    ...(cfg.publicUrl ? { publicUrl: cfg.publicUrl } : {}),
    ...(cfg.forgeStatusDeadlineMs ? { forgeStatusDeadlineMs: cfg.forgeStatusDeadlineMs } : {}),
  };
}

/** Search attributes, summary and details of a pipeline run in the Temporal Web UI. */
function webUiOptions(input: PipelineInput) {
  return {
    attributes: searchAttributesFor({ ...input, state: 'running' }),
    staticSummary: runSummary(input),
    staticDetails: runDetails(input),
  };
}

export async function startPipeline(
  client: Client,
  cfg: StartConfig,
  req: PipelineRequest,
  pipelineId: string = randomUUID(),
): Promise<{ pipelineId: string; workflowId: string; runId: string }> {
  const workflowId = pipelineWorkflowId(req, pipelineId);
  const input = pipelineInput(cfg, req, pipelineId);
  const { attributes, ...metadata } = webUiOptions(input);
  const handle = await startWithSearchAttributes(attributes, (typedSearchAttributes) =>
    startWorkflow(client, 'PipelineWorkflow', {
      taskQueue: cfg.taskQueue,
      workflowId,
      args: [input],
      typedSearchAttributes,
      ...metadata,
    }),
  );
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

/** The event a JobRequest v1 stands for, from its source and ref (and a manual one's event). */
export function eventOfRequest(r: Pick<JobRequestV1, 'source' | 'ref' | 'event'>): PipelineEvent {
  // `solstice enqueue --event push|pull_request` runs as that event; otherwise by hand.
  if (r.source === 'manual') return r.event ?? 'manual';
  if (r.ref.startsWith('refs/tags/')) return 'tag';
  if (r.ref.startsWith('refs/pull/') || r.ref.startsWith('refs/merge-requests/')) return 'pull_request';
  return 'push';
}

/** The ids a JobRequest v1 gets as a pipeline: `pipeline/<repo>/<sha12>/…`, and a uuid from it. */
export function pipelineIdsForRequest(
  r: JobRequestV1,
  dedupeWindowMs: number = DEFAULT_DEDUPE_WINDOW_MS,
  windowsBack = 0,
): { workflowId: string; pipelineId: string } {
  const workflowId = workflowIdFor(r, 'pipeline', dedupeWindowMs, windowsBack);
  return { workflowId, pipelineId: jobIdFor(workflowId) };
}

/**
 * The run of the same forge event started in the previous dedupe window, if it started less
 * than one window before this request was submitted (a Replay just after a window's edge).
 */
async function sameEventEarlier(
  client: Client,
  r: JobRequestV1,
  windowMs: number,
): Promise<{ workflowId: string; pipelineId: string } | undefined> {
  if (!eventKeyOf(r)) return undefined;
  const earlier = pipelineIdsForRequest(r, windowMs, 1);
  try {
    const d = await client.workflow.getHandle(earlier.workflowId).describe();
    return Date.parse(r.submitted_at) - d.startTime.getTime() < windowMs ? earlier : undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/**
 * Starts the pipeline a JobRequest v1 asks for, at most once: a second start of the same
 * request, even after the first run finished, is refused by Temporal (REJECT_DUPLICATE) and
 * reported as `started: false`; so is another delivery of the same forge event within the
 * dedupe window (see workflowIdFor). For the AMQP bridge. `solstice rerun` starts a new
 * pipeline id of its own (rerunPipeline) and is never deduped.
 */
export async function startPipelineForRequest(
  client: Client,
  cfg: StartConfig,
  r: JobRequestV1,
): Promise<{ pipelineId: string; workflowId: string; started: boolean }> {
  const windowMs = cfg.webhookDedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_MS;
  const earlier = await sameEventEarlier(client, r, windowMs);
  if (earlier) return { ...earlier, started: false };
  const { workflowId, pipelineId } = pipelineIdsForRequest(r, windowMs);
  const input = pipelineInput(
    cfg,
    {
      source: r.source,
      event: eventOfRequest(r),
      repoUrl: r.repo_url,
      commitSha: r.commit_sha,
      ref: r.ref,
      ...(r.runs_on ? { label: r.runs_on } : {}),
      ...(r.before_sha ? { beforeSha: r.before_sha } : {}),
      ...(r.source === 'manual' && r.workflow_path
        ? { dispatch: { workflow: r.workflow_path, inputs: r.inputs ?? {} } }
        : {}),
    },
    pipelineId,
  );
  const { attributes, ...metadata } = webUiOptions(input);
  try {
    await startWithSearchAttributes(attributes, (typedSearchAttributes) =>
      startWorkflow(client, 'PipelineWorkflow', {
        taskQueue: cfg.taskQueue,
        workflowId,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        args: [input],
        memo: { requestId: r.request_id, ...(r.delivery_id ? { deliveryId: r.delivery_id } : {}) },
        typedSearchAttributes,
        ...metadata,
      }),
    );
    return { pipelineId, workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      return { pipelineId, workflowId, started: false };
    throw err;
  }
}
