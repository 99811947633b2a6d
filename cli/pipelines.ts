/** Pipelines for the CLI: resolving `<pipeline|job>` ids, showing, following, cancelling, rerunning. */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { CapacityStore } from '../capacity/store';
import { SETTINGS, type Config } from '../platform/config';
import { isLoopbackHost, joinHostPort, splitHostPort } from '../platform/net';
import { InputError, NotFoundError } from '../platform/errors';
import { ID_PREFIX } from '../storage/run-rows';
import { isLocalRepo, normalizeRepoUrl } from '../model/repo-url';
import { didYouMean } from '../workflow-file/suggest';
import type { JobRecord } from '../storage/job-store';
import { jobSteps, pipelineView, type JobSteps } from '../storage/run-views';
import type { JobRequestV1 } from '../model/job-request';
import {
  pipelineLabel,
  PipelineStore,
  type PipelineJobRecord,
  type PipelineRecord,
} from '../storage/pipeline-store';
import type { Store } from './context';
import { storeSource, waitForJobEnd, type RunSource } from './run-source';
import { overviewLines, StatusBlock, type LineSink, type OverviewJob } from './live-overview';
import {
  exitCodeForState,
  formatJob,
  formatJobDuration,
  formatLogLine,
  formatSteps,
  formatTable,
  stateLabel,
} from './output';

/** The run in the dev server's Web UI; only a local Temporal has a UI we know the port of. */
export function workflowUiUrl(cfg: Config, workflowId: string): string | undefined {
  const { host } = splitHostPort(cfg.temporalAddress, SETTINGS.temporalAddress.env);
  if (!isLoopbackHost(host)) return undefined;
  return `http://${joinHostPort(host, cfg.temporalUiPort)}/namespaces/${cfg.temporalNamespace}/workflows/${encodeURIComponent(workflowId)}`;
}

export type Target =
  { kind: 'pipeline'; pipeline: PipelineRecord } | { kind: 'job'; job: JobRecord; name?: string };

const REFERENCE_HINT =
  'Give a pipeline or job id (in full or a unique prefix of at least 4 characters), a pipeline as <repo>#<number> (app#12), or a job as <pipeline>/<job name>; `solstice pipelines` and `solstice jobs` list recent ones.';

export { pipelineLabel };

/** `app#12`, `acme/app#12`, `../app#12` or `#12`, optionally followed by `/<job name>`. */
const NUMBERED = /^([^#]*)#(\d+)(?:\/(.+))?$/;

/** Whether `repo` (as typed after a `<repo>#`) names the repository at `repoUrl`. */
function repoMatches(repo: string, repoUrl: string): boolean {
  const typed = isLocalRepo(repo) && /^[./~]/.test(repo) ? path.resolve(repo) : repo;
  const want = normalizeRepoUrl(typed).replace(/^\/+/, '');
  const have = normalizeRepoUrl(repoUrl);
  return have === want || have.endsWith(`/${want}`);
}

/** The repository the current directory is a checkout of, as `enqueue` records local ones. */
async function currentRepo(): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)('git', ['rev-parse', '--show-toplevel']);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Pipeline `#<number>` of a repository: the one `repo` names (its name, `owner/name`, a path
 * or the end of its URL); without one, the only repository with that number, else the
 * repository of the current directory.
 */
async function numberedPipeline(store: Store, repo: string, number: number): Promise<PipelineRecord> {
  const all = await new PipelineStore(store.db).withNumber(number);
  let found = repo ? all.filter((p) => repoMatches(repo, p.repoUrl)) : all;
  if (found.length > 1 && !repo) {
    const here = await currentRepo();
    const mine = found.filter(
      (p) => here !== undefined && normalizeRepoUrl(p.repoUrl) === normalizeRepoUrl(here),
    );
    if (mine.length === 1) found = mine;
  }
  if (found.length === 1) return found[0];
  if (found.length === 0)
    throw new InputError(
      `no pipeline #${number}${repo ? ` of a repository "${repo}"` : ''}`,
      all.length > 0
        ? `#${number} exists as ${all.map(pipelineLabel).join(', ')}`
        : '`solstice pipelines` lists recent ones with their numbers',
    );
  throw new InputError(
    `${repo}#${number} names pipelines of ${found.length} repositories`,
    `name the repository: ${found.map((p) => `${p.repoUrl}#${number}`).join(', ')}`,
  );
}

/**
 * A pipeline or a job: by full id or unique prefix (pipelines first), a pipeline as
 * `<repo>#<number>`, or a job as `<pipeline>/<job name>`. Whatever names nothing is bad input
 * (exit 2), malformed or not.
 */
export async function resolveTarget(store: Store, reference: string): Promise<Target> {
  const pipelines = new PipelineStore(store.db);
  const numbered = NUMBERED.exec(reference.trim());
  if (numbered) {
    const pipeline = await numberedPipeline(store, numbered[1], Number(numbered[2]));
    return numbered[3] ? pipelineJob(store, pipeline, numbered[3]) : { kind: 'pipeline', pipeline };
  }
  const slash = reference.indexOf('/');
  if (slash > 0) {
    const pipeline = await pipelines.findPipeline(reference.slice(0, slash));
    if (!pipeline)
      throw new InputError(`no pipeline id starts with "${reference.slice(0, slash)}"`, REFERENCE_HINT);
    return pipelineJob(store, pipeline, reference.slice(slash + 1));
  }
  if (!ID_PREFIX.test(reference.trim().toLowerCase()))
    throw new InputError(`"${reference}" is not a pipeline or job reference`, REFERENCE_HINT);
  const pipeline = await pipelines.findPipeline(reference);
  if (pipeline) return { kind: 'pipeline', pipeline };
  try {
    const job = await store.jobs.resolveJob(reference);
    return { kind: 'job', job, name: (await pipelines.jobNames([job.id])).get(job.id) };
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new InputError(`no pipeline or job id starts with "${reference}"`, REFERENCE_HINT);
    throw err;
  }
}

/** A job reference (id, prefix or <pipeline>/<job name>); a pipeline is refused with its jobs. */
export async function resolveJobReference(store: Store, reference: string): Promise<JobRecord> {
  const target = await resolveTarget(store, reference);
  if (target.kind === 'job') return target.job;
  const jobs = await new PipelineStore(store.db).listJobs(target.pipeline.id);
  throw new InputError(
    `${reference} is a pipeline; name one of its jobs`,
    `e.g. ${pipelineLabel(target.pipeline)}/${jobs[0]?.name ?? '<job name>'}; its jobs: ${jobs.map((j) => j.name).join(', ')}`,
  );
}

/**
 * A pipeline's job by its name: exact (`test[node=20]`), or a job's id in the workflow file when
 * that is one run (`lint`); a matrix job's id with several instances lists them.
 */
export async function pipelineJob(
  store: Store,
  pipeline: PipelineRecord,
  name: string,
): Promise<Target & { kind: 'job' }> {
  const jobs = await new PipelineStore(store.db).listJobs(pipeline.id);
  const exact = jobs.find((j) => j.name === name);
  const instances = jobs.filter((j) => j.name.startsWith(`${name}[`));
  const found = exact ?? (instances.length === 1 ? instances[0] : undefined);
  if (!found) {
    if (instances.length > 1)
      throw new InputError(
        `pipeline ${pipeline.id} has ${instances.length} jobs named ${name}[...]`,
        `name one: ${instances.map((j) => j.name).join(', ')}`,
      );
    const nearest = didYouMean(
      name,
      jobs.map((j) => j.name),
    );
    throw new InputError(
      `pipeline ${pipeline.id} has no job "${name}"`,
      `${nearest ? `did you mean ${nearest}? ` : ''}its jobs: ${jobs.map((j) => j.name).join(', ')}`,
    );
  }
  if (!found.jobId)
    throw new InputError(
      `job ${found.name} of pipeline ${pipeline.id} did not run: ${found.state}${found.message ? ` (${found.message})` : ''}`,
    );
  const job = await store.jobs.getJob(found.jobId);
  if (!job) throw new NotFoundError(`job ${found.jobId} (${found.name}) is not recorded yet`);
  return { kind: 'job', job, name: found.name };
}

function formatPipelineHead(p: PipelineRecord): string {
  const rows: [string, string][] = [
    ['pipeline', `${pipelineLabel(p)}  ${p.id}`],
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
export async function formatPipeline(source: RunSource, p: PipelineRecord): Promise<string> {
  const jobs = await source.listJobs(p.id);
  const out = [`${formatPipelineHead(p)}\njobs`];
  for (const j of jobs) {
    const needs = j.needs.length > 0 ? `  needs ${j.needs.join(', ')}` : '';
    const id = j.jobId ? `  ${j.jobId}` : '';
    const queued = j.jobId && j.state === 'running' ? await queueNote(source, j.jobId) : '';
    out.push(
      `  ${j.name}  ${stateLabel(j.state)}${queued}${id}${needs}${j.message ? `\n    ${j.message}` : ''}`,
    );
    if (j.jobId) {
      const steps = formatSteps(await source.stepTable(j.jobId), '    ');
      if (steps) out.push(steps.trimEnd());
    }
  }
  return `${out.join('\n')}\n`;
}

export async function pipelineJson(store: Store, p: PipelineRecord): Promise<object> {
  return pipelineView(store.jobs, p);
}

/** A job's steps for `--json`: every attempt's (each step says its attempt), and the lost ones. */
export async function stepsJson(store: Store, jobId: string | null): Promise<JobSteps> {
  return jobSteps(store.jobs, jobId);
}

/** A job waiting for a machine slot: its place among the waiting jobs of its label. */
export async function queuePositionOf(store: Store, jobId: string): Promise<number | undefined> {
  return new CapacityStore(store.db).queuePosition(jobId);
}

/** ` (queued, position N)` for a pipeline job whose run still waits for a machine, else ''. */
async function queueNote(source: RunSource, jobId: string): Promise<string> {
  const position = await source.queuePosition(jobId);
  return position === undefined ? '' : ` (queued, position ${position})`;
}

/** `solstice status <job>`: the job, its steps, and the pipeline it belongs to. */
export async function formatJobStatus(source: RunSource, job: JobRecord, name?: string): Promise<string> {
  const lines = await source.countLogLines(job.id);
  const pipeline = await source.pipelineOfJob(job.id);
  const extra: Record<string, string> = { 'log lines': String(lines) };
  if (name) extra.name = name;
  const position = job.state === 'queued' ? await source.queuePosition(job.id) : undefined;
  if (position !== undefined)
    extra.queue = `position ${position} among jobs waiting for a "${job.label}" machine`;
  if (pipeline) extra.pipeline = `${pipelineLabel(pipeline)}  ${pipeline.id} (${pipeline.state})`;
  return `${formatJob(job, extra)}
${formatSteps(await source.stepTable(job.id))}`;
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

/** `name | ` before each line of a job, names padded alike, as `docker compose logs` does. */
export function linePrefix(name: string, width: number): string {
  return width === 0 ? '' : `${name.padEnd(width)} | `;
}

/** How one job ended, after its log: `failure (exit code 1): message`. */
function outcomeText(job: JobRecord): string {
  const exit = job.exitCode === null ? '' : ` (exit code ${job.exitCode})`;
  return `${stateLabel(job.state)}${exit}${job.message && job.state !== 'success' ? `: ${job.message}` : ''}`;
}

/**
 * Prints the jobs' live logs as the pipeline runs: the lines of jobs that run at once
 * interleave as they arrive, each prefixed with its job's name when the pipeline has more than
 * one job. Jobs that never ran are named with why. Ends with a table of every job's outcome and
 * returns the pipeline's final record.
 */
export async function followPipeline(
  source: RunSource,
  pipelineId: string,
  out: NodeJS.WritableStream,
  pollMs = 250,
  /** Gets what the lines go through, for notes written beside them (under the overview). */
  onSink?: (sink: LineSink) => void,
): Promise<PipelineRecord> {
  // On a terminal, a jobs/steps overview stays under the lines; on a pipe, plain lines only.
  const tty = Boolean((out as Partial<NodeJS.WriteStream>).isTTY) && process.env.TERM !== 'dumb';
  const block = tty ? new StatusBlock(out) : undefined;
  const sink: LineSink = block ?? out;
  onSink?.(sink);
  const shown = new Set<string>();
  const following: Promise<void>[] = [];
  for (;;) {
    const p = await source.getPipeline(pipelineId);
    const jobs = await source.listJobs(pipelineId);
    const width = jobs.length > 1 ? Math.max(...jobs.map((j) => j.name.length)) : 0;
    for (const j of jobs.filter((j) => !shown.has(j.name))) {
      const prefix = linePrefix(j.name, width);
      const who = width === 0 ? `job ${j.jobId} ` : prefix;
      if (!j.jobId) {
        if (!FINAL_JOB.includes(j.state)) continue;
        shown.add(j.name);
        sink.write(
          `${width === 0 ? `job ${j.name} ` : prefix}${stateLabel(j.state)}${j.message ? `: ${j.message}` : ''}\n`,
        );
        continue;
      }
      shown.add(j.name);
      if (j.message && j.state === 'success' && p?.rerunOf) {
        sink.write(`${width === 0 ? `job ${j.name} ` : prefix}${stateLabel('success')}: ${j.message}\n`);
        continue;
      }
      const jobId = j.jobId;
      sink.write(`${prefix}job ${jobId}\n`);
      following.push(
        (async () => {
          // As `solstice logs` does: the next page is read once the output took this one in,
          // so a slow reader holds the log back instead of it piling up in memory.
          for await (const page of source.readLogPages(jobId, { follow: true, pollMs }))
            if (sink.write(page.map((line) => `${prefix}${formatLogLine(line)}\n`).join('')) === false)
              await once(out, 'drain');
          sink.write(`${who}${outcomeText(await waitForJobEnd(source, jobId, pollMs))}\n`);
        })(),
      );
    }
    if (block) block.update(await overview(source, jobs, columnsOf(out)));
    if (p && p.state !== 'running' && jobs.every((j) => shown.has(j.name))) {
      await Promise.all(following);
      block?.close();
      if (jobs.length > 1) out.write(await formatSummary(source, jobs));
      return p;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The terminal's width; a pseudo-terminal without a size says 0. */
function columnsOf(out: NodeJS.WritableStream): number {
  return (out as Partial<NodeJS.WriteStream>).columns || Number(process.env.COLUMNS) || 80;
}

/** The overview's lines for the jobs as they are now: each running job's current step. */
async function overview(source: RunSource, jobs: PipelineJobRecord[], columns: number): Promise<string[]> {
  const rows: OverviewJob[] = await Promise.all(
    jobs.map(async (j) => {
      const job = j.jobId ? await source.getJob(j.jobId) : undefined;
      const running = j.state === 'running' && j.jobId;
      const step = running
        ? (await source.stepTable(j.jobId!)).steps.filter((st) => st.outcome === 'running').pop()
        : undefined;
      // A pipeline job runs from the pipeline's view while its machine is still made.
      const state = running && job && job.state !== 'running' ? job.state : j.state;
      return { name: j.name, state, step, startedAt: job?.startedAt, finishedAt: job?.finishedAt };
    }),
  );
  return overviewLines(rows, new Date(), columns);
}

/** The table after a followed pipeline: every job's state, exit code, duration and id. */
export async function formatSummary(source: RunSource, jobs: PipelineJobRecord[]): Promise<string> {
  const rows = [['JOB', 'STATE', 'EXIT', 'DURATION', 'ID']];
  for (const j of jobs) {
    const job = j.jobId ? await source.getJob(j.jobId) : undefined;
    rows.push([
      j.name,
      j.state,
      job?.exitCode === null || job?.exitCode === undefined ? '-' : String(job.exitCode),
      job ? formatJobDuration(job) : '-',
      j.jobId ?? '-',
    ]);
  }
  return formatTable(rows);
}

/** A pipeline's ids, known from its request as soon as it is started or queued. */
export interface StartedPipeline {
  pipelineId: string;
  workflowId: string;
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
  onStarted?: (started: StartedPipeline) => void,
): Promise<number> {
  const [{ connectClient }, { startPipelineForRequest }] = await Promise.all([
    import('../platform/temporal'),
    import('../ingress/pipeline-start'),
  ]);
  const temporal = await connectClient(cfg);
  let started: StartedPipeline;
  try {
    // The bridge's own start, so both ways give the same ids (and a pipeline's timeout is the
    // configured SOLSTICE_JOB_TIMEOUT, which --job-timeout sets).
    started = await startPipelineForRequest(temporal.client, cfg, r);
  } finally {
    await temporal.close();
  }
  onStarted?.(started);
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
  started: StartedPipeline,
  follow: boolean,
  out: NodeJS.WritableStream,
): Promise<number> {
  out.write(`pipeline ${started.pipelineId}\n`);
  out.write(`workflow ${started.workflowId}\n`);
  const ui = workflowUiUrl(cfg, started.workflowId);
  if (ui) out.write(`web ui ${ui}\n`);
  if (!follow) return 0;
  const watching = new AbortController();
  let notes: LineSink = out;
  const watcher = sayWhenNoWorker(cfg, { write: (text) => notes.write(text) }, watching.signal);
  let p: PipelineRecord;
  try {
    p = await followPipeline(
      storeSource(store),
      started.pipelineId,
      out,
      undefined,
      (sink) => (notes = sink),
    );
  } finally {
    watching.abort();
    await watcher;
  }
  out.write(`pipeline ${p.id} ${stateLabel(p.state)}${p.message ? `: ${p.message}` : ''}\n`);
  return exitCodeForState(p.state);
}

/** How long a worker that just started may take to show as a poller before we say none does. */
const NO_WORKER_GRACE_MS = 2000;

/**
 * While a pipeline is followed: says within seconds when no worker polls the task queue (the
 * pipeline would wait silently), and again when one does. Never fails the follow: a Temporal
 * that cannot be asked only means no note.
 */
async function sayWhenNoWorker(cfg: Config, out: LineSink, signal: AbortSignal): Promise<void> {
  const { connectClient, workflowPollers } = await import('../platform/temporal');
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  let temporal: Awaited<ReturnType<typeof connectClient>> | undefined;
  try {
    temporal = await connectClient(cfg);
    const polled = () => workflowPollers(temporal!.client, cfg.temporalNamespace, cfg.taskQueue);
    if ((await polled()) > 0) return;
    await sleep(NO_WORKER_GRACE_MS);
    if (signal.aborted || (await polled()) > 0) return;
    out.write(
      `note: no worker polls task queue "${cfg.taskQueue}" on ${cfg.temporalAddress}; the pipeline waits until one does. ` +
        `Start one with \`solstice worker\` (or \`solstice up\`) and the same ${SETTINGS.taskQueue.env}; still waiting...\n`,
    );
    while (!signal.aborted) {
      await sleep(2000);
      if (!signal.aborted && (await polled()) > 0) {
        out.write(`note: a worker polls task queue "${cfg.taskQueue}" now\n`);
        return;
      }
    }
  } catch {
    // Only a note is lost; the follow itself reports what matters.
  } finally {
    await temporal?.close();
  }
}
