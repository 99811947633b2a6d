/** `solstice logs`: what it prints for a job or a pipeline; lines come from storage/log-follow. */
import type { Config } from '../platform/config';
import { InputError } from '../platform/errors';
import type { JobRecord, JobStepRecord, LogLineRecord } from '../storage/job-store';
import { readLog, waitForFinalState } from '../storage/log-follow';
import { PipelineStore, type PipelineJobRecord } from '../storage/pipeline-store';
import { withStore, type Store } from './context';
import { exitCodeForState, formatLogLine } from './output';
import { followPipeline, formatSummary, linePrefix, pipelineJob, resolveTarget } from './pipelines';

export interface LogsOptions {
  target: string;
  jobName?: string;
  follow: boolean;
  failed: boolean;
  step?: string;
  exitStatus: boolean;
}

const FAILED = ['failure', 'error', 'cancelled'];

/** The step `--step` names, by its number or its name. */
function findStep(steps: JobStepRecord[], step: string, job: JobRecord): JobStepRecord {
  const found = /^\d+$/.test(step)
    ? steps.find((s) => s.index === Number(step))
    : steps.find((s) => s.name === step);
  if (!found)
    throw new InputError(
      `job ${job.id} has no step "${step}"`,
      steps.length > 0
        ? `its steps: ${steps.map((s) => `${s.index}. ${s.name}`).join(', ')}`
        : 'it reported no steps yet',
    );
  return found;
}

function inStep(line: LogLineRecord, step: JobStepRecord | undefined): boolean {
  if (!step) return true;
  return (
    (step.firstSeq === null || line.seq >= step.firstSeq) &&
    (step.lastSeq === null || line.seq <= step.lastSeq)
  );
}

async function printJob(
  store: Store,
  job: JobRecord,
  prefix: string,
  opts: LogsOptions,
  out: NodeJS.WritableStream,
): Promise<JobRecord> {
  const step = opts.step ? findStep(await store.jobs.listSteps(job.id), opts.step, job) : undefined;
  for await (const line of readLog(store.jobs, job.id, { follow: opts.follow })) {
    if (step && step.lastSeq !== null && line.seq > step.lastSeq) break;
    if (inStep(line, step)) out.write(`${prefix}${formatLogLine(line)}\n`);
  }
  return opts.follow || opts.exitStatus ? waitForFinalState(store.jobs, job.id) : job;
}

export async function showLogs(cfg: Config, out: NodeJS.WritableStream, opts: LogsOptions): Promise<number> {
  return withStore(cfg, async (store) => {
    let target = await resolveTarget(store, opts.target);
    if (opts.jobName !== undefined) {
      if (target.kind !== 'pipeline')
        throw new InputError(
          `${opts.target} is a job; a job name goes after a pipeline`,
          `\`solstice logs ${opts.target}\` prints this job's log`,
        );
      target = await pipelineJob(store, target.pipeline, opts.jobName);
    }
    if (target.kind === 'job') {
      const job = await printJob(store, target.job, '', opts, out);
      return opts.exitStatus ? exitCodeForState(job.state) : 0;
    }
    const { pipeline } = target;
    if (opts.follow && !opts.failed && !opts.step) {
      const p = await followPipeline(store, pipeline.id, out);
      return opts.exitStatus ? exitCodeForState(p.state) : 0;
    }
    const jobs = await new PipelineStore(store.db).listJobs(pipeline.id);
    const chosen: PipelineJobRecord[] = opts.failed ? jobs.filter((j) => FAILED.includes(j.state)) : jobs;
    if (chosen.length === 0)
      out.write(
        opts.failed
          ? `no job of pipeline ${pipeline.id} failed\n`
          : `pipeline ${pipeline.id} has no jobs yet\n`,
      );
    const width = jobs.length > 1 ? Math.max(...chosen.map((j) => j.name.length)) : 0;
    for (const j of chosen) {
      const prefix = linePrefix(j.name, width);
      const job = j.jobId ? await store.jobs.getJob(j.jobId) : undefined;
      if (!job) {
        out.write(`${prefix}(did not run: ${j.state}${j.message ? `, ${j.message}` : ''})\n`);
        continue;
      }
      await printJob(store, job, prefix, opts, out);
    }
    if (jobs.length > 1 && !opts.step) out.write(await formatSummary(store, chosen));
    const final =
      opts.exitStatus && pipeline.state === 'running'
        ? await waitForPipeline(store, pipeline.id)
        : pipeline.state;
    return opts.exitStatus ? exitCodeForState(final) : 0;
  });
}

async function waitForPipeline(store: Store, pipelineId: string): Promise<string> {
  const pipelines = new PipelineStore(store.db);
  for (;;) {
    const p = await pipelines.getPipeline(pipelineId);
    if (p && p.state !== 'running') return p.state;
    await new Promise((r) => setTimeout(r, 250));
  }
}
