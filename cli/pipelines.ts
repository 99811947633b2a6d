/** Pipelines for the CLI: resolving `<pipeline|job>` ids, showing, following, cancelling, rerunning. */
import type { Client } from '@temporalio/client';
import { CapacityStore } from '../capacity/store';
import { SETTINGS, type Config } from '../platform/config';
import { isLoopbackHost, joinHostPort, splitHostPort } from '../platform/net';
import { NotFoundError } from '../platform/errors';
import type { JobRecord } from '../storage/job-store';
import { readLog, waitForFinalState } from '../storage/log-follow';
import type { JobRequestV1 } from '../model/job-request';
import { PipelineStore, type PipelineJobRecord, type PipelineRecord } from '../storage/pipeline-store';
import type { Store } from './context';
import { exitCodeForState, formatJob, formatLogLine, formatSteps, stateLabel } from './output';

/** The run in the dev server's Web UI; only a local Temporal has a UI we know the port of. */
export function workflowUiUrl(cfg: Config, workflowId: string): string | undefined {
  const { host } = splitHostPort(cfg.temporalAddress, SETTINGS.temporalAddress.env);
  if (!isLoopbackHost(host)) return undefined;
  return `http://${joinHostPort(host, cfg.temporalUiPort)}/namespaces/${cfg.temporalNamespace}/workflows/${encodeURIComponent(workflowId)}`;
}

export type Target = { kind: 'pipeline'; pipeline: PipelineRecord } | { kind: 'job'; job: JobRecord };

/** A pipeline or a job, by full id or unique prefix; pipelines first. */
export async function resolveTarget(store: Store, idOrPrefix: string): Promise<Target> {
  const pipelines = new PipelineStore(store.db);
  const pipeline = await pipelines.findPipeline(idOrPrefix);
  if (pipeline) return { kind: 'pipeline', pipeline };
  try {
    return { kind: 'job', job: await store.jobs.resolveJob(idOrPrefix) };
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new NotFoundError(
        `no pipeline or job ${idOrPrefix}`,
        '`solstice pipelines` and `solstice jobs` list recent ones.',
      );
    throw err;
  }
}

function formatPipelineHead(p: PipelineRecord): string {
  const rows: [string, string][] = [
    ['pipeline', p.id],
    ['state', stateLabel(p.state)],
    ...(p.message ? ([['message', p.message]] as [string, string][]) : []),
    ['repo', p.repoUrl],
    ['commit', p.commitSha],
    ['ref', p.ref ?? '-'],
    ['event', `${p.event} (${p.source})`],
    ...(p.rerunOf ? ([['rerun of', p.rerunOf]] as [string, string][]) : []),
    ['workflow', p.workflowId],
  ];
  return rows.map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n');
}

/** `solstice status <pipeline>`: the pipeline, then each job with its steps. */
export async function formatPipeline(store: Store, p: PipelineRecord): Promise<string> {
  const jobs = await new PipelineStore(store.db).listJobs(p.id);
  const out = [`${formatPipelineHead(p)}\njobs`];
  for (const j of jobs) {
    const needs = j.needs.length > 0 ? `  needs ${j.needs.join(', ')}` : '';
    const id = j.jobId ? `  ${j.jobId}` : '';
    const queued = j.jobId && j.state === 'running' ? await queueNote(store, j.jobId) : '';
    out.push(
      `  ${j.name}  ${stateLabel(j.state)}${queued}${id}${needs}${j.message ? `\n    ${j.message}` : ''}`,
    );
    if (j.jobId) {
      const steps = formatSteps(await store.jobs.listSteps(j.jobId), '    ');
      if (steps) out.push(steps.trimEnd());
    }
  }
  return `${out.join('\n')}\n`;
}

export async function pipelineJson(store: Store, p: PipelineRecord): Promise<object> {
  const jobs = await new PipelineStore(store.db).listJobs(p.id);
  return {
    ...p,
    jobs: await Promise.all(
      jobs.map(async (j) => ({ ...j, steps: j.jobId ? await store.jobs.listSteps(j.jobId) : [] })),
    ),
  };
}

/** A job waiting for a machine slot: its place among the waiting jobs of its label. */
export async function queuePositionOf(store: Store, jobId: string): Promise<number | undefined> {
  return new CapacityStore(store.db).queuePosition(jobId);
}

/** ` (queued, position N)` for a pipeline job whose run still waits for a machine, else ''. */
async function queueNote(store: Store, jobId: string): Promise<string> {
  const position = await queuePositionOf(store, jobId);
  return position === undefined ? '' : ` (queued, position ${position})`;
}

/** `solstice status <job>`: the job, its steps, and the pipeline it belongs to. */
export async function formatJobStatus(store: Store, job: JobRecord): Promise<string> {
  const lines = await store.jobs.countLogLines(job.id);
  const pipeline = await new PipelineStore(store.db).pipelineOfJob(job.id);
  const extra: Record<string, string> = { 'log lines': String(lines) };
  const position = job.state === 'queued' ? await queuePositionOf(store, job.id) : undefined;
  if (position !== undefined)
    extra.queue = `position ${position} among jobs waiting for a "${job.label}" machine`;
  if (pipeline) extra.pipeline = `${pipeline.id} (${pipeline.state})`;
  return `${formatJob(job, extra)}\n${formatSteps(await store.jobs.listSteps(job.id))}`;
}

/** Cancels a pipeline (all its running jobs) or one job; returns what was cancelled. */
export async function cancelTarget(client: Client, target: Target): Promise<string> {
  const workflowId = target.kind === 'pipeline' ? target.pipeline.workflowId : target.job.workflowId;
  await client.workflow.getHandle(workflowId).cancel();
  return workflowId;
}

export async function rerun(
  client: Client,
  cfg: Config,
  store: Store,
  p: PipelineRecord,
  failedOnly: boolean,
): Promise<{ pipelineId: string; workflowId: string; reused: string[] }> {
  const jobs = await new PipelineStore(store.db).listJobs(p.id);
  // Loaded here: `status` and `logs` use this module and need no Temporal client.
  const { rerunPipeline } = await import('../ingress/pipeline-start');
  return rerunPipeline(client, cfg, p, jobs, { failedOnly });
}

const FINAL_JOB: readonly PipelineJobRecord['state'][] = [
  'success',
  'failure',
  'error',
  'cancelled',
  'skipped',
];

/**
 * Prints each job's live log as the pipeline runs, job after job in file order, and returns
 * the pipeline's final record. Jobs that never ran are named with why.
 */
export async function followPipeline(
  store: Store,
  pipelineId: string,
  out: NodeJS.WritableStream,
  pollMs = 250,
): Promise<PipelineRecord> {
  const pipelines = new PipelineStore(store.db);
  const shown = new Set<string>();
  for (;;) {
    const p = await pipelines.getPipeline(pipelineId);
    const jobs = await pipelines.listJobs(pipelineId);
    const next = jobs.find((j) => !shown.has(j.name));
    if (!next) {
      if (p && p.state !== 'running') return p;
      await new Promise((r) => setTimeout(r, pollMs));
      continue;
    }
    if (!next.jobId) {
      if (!FINAL_JOB.includes(next.state)) {
        await new Promise((r) => setTimeout(r, pollMs));
        continue;
      }
      shown.add(next.name);
      out.write(`job ${next.name} ${stateLabel(next.state)}${next.message ? `: ${next.message}` : ''}\n`);
      continue;
    }
    shown.add(next.name);
    if (next.message && next.state === 'success' && p?.rerunOf) {
      out.write(`job ${next.name} ${stateLabel('success')}: ${next.message}\n`);
      continue;
    }
    if (jobs.length > 1) out.write(`== job ${next.name}\n`);
    out.write(`job ${next.jobId}\n`);
    for await (const line of readLog(store.jobs, next.jobId, { follow: true }))
      out.write(`${formatLogLine(line)}\n`);
    const job = await waitForFinalState(store.jobs, next.jobId);
    const exit = job.exitCode === null ? '' : ` (exit code ${job.exitCode})`;
    out.write(
      `job ${job.id} ${stateLabel(job.state)}${exit}${job.message && job.state !== 'success' ? `: ${job.message}` : ''}\n`,
    );
  }
}

/**
 * `solstice enqueue` started directly: a PipelineWorkflow for the request, started as the bridge
 * starts it. Prints its ids; with `follow`, each job's log and result, then the pipeline's, and
 * returns the exit code for the pipeline's state (0 success, 1 failure, 3 error, 4 cancelled).
 */
export async function enqueuePipeline(
  cfg: Config,
  store: Store,
  r: JobRequestV1,
  follow: boolean,
  out: NodeJS.WritableStream,
): Promise<number> {
  const [{ connectClient }, { startPipelineForRequest }] = await Promise.all([
    import('../platform/temporal'),
    import('../ingress/pipeline-start'),
  ]);
  const temporal = await connectClient(cfg);
  let started: { pipelineId: string; workflowId: string };
  try {
    // The bridge's own start, so both ways give the same ids (and a pipeline's timeout is the
    // configured SOLSTICE_JOB_TIMEOUT, which --job-timeout sets).
    started = await startPipelineForRequest(temporal.client, cfg, r);
  } finally {
    await temporal.close();
  }
  return showPipeline(cfg, store, started, follow, out);
}

/**
 * Prints a started pipeline's ids and Web UI link; with `follow`, each job's log and result,
 * then the pipeline's, returning the exit code for its state (0 success, 1 failure, 3 error,
 * 4 cancelled). The pipeline may not be recorded yet (the AMQP bridge starts it): it waits.
 */
export async function showPipeline(
  cfg: Config,
  store: Store,
  started: { pipelineId: string; workflowId: string },
  follow: boolean,
  out: NodeJS.WritableStream,
): Promise<number> {
  out.write(`pipeline ${started.pipelineId}\n`);
  out.write(`workflow ${started.workflowId}\n`);
  const ui = workflowUiUrl(cfg, started.workflowId);
  if (ui) out.write(`web ui ${ui}\n`);
  if (!follow) return 0;
  const p = await followPipeline(store, started.pipelineId, out);
  out.write(`pipeline ${p.id} ${stateLabel(p.state)}${p.message ? `: ${p.message}` : ''}\n`);
  return exitCodeForState(p.state);
}
