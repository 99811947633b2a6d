/** `solstice logs`: what it prints for a job or a pipeline; lines come from storage/log-follow. */
import { once } from 'node:events';
import type { Config } from '../platform/config';
import { InputError } from '../platform/errors';
import type { JobRecord, JobStepRecord, StepTable } from '../storage/job-store';
import { attemptsOf } from '../storage/step-table';
import type { PipelineJobRecord } from '../storage/pipeline-store';
import { withStore } from './context';
import { exitCodeForState, formatLogLine } from './output';
import {
  followPipeline,
  formatSummary,
  linePrefix,
  pipelineJob,
  resolveTarget,
  type Target,
} from './pipelines';
import { remoteMode } from './remote-mode';
import { storeSource, waitForJobEnd, type RunSource } from './run-source';

export interface LogsOptions {
  target: string;
  jobName?: string;
  follow: boolean;
  failed: boolean;
  step?: string;
  exitStatus: boolean;
}

const FAILED = ['failure', 'error', 'cancelled'];

/** The step `--step` names, by its number or its name: one per attempt that ran it. */
function findSteps(steps: JobStepRecord[], step: string, job: JobRecord): JobStepRecord[] {
  const found = /^\d+$/.test(step)
    ? steps.filter((s) => s.index === Number(step))
    : steps.filter((s) => s.name === step);
  if (found.length === 0) {
    const names = [...new Map(steps.map((s) => [s.index, `${s.index}. ${s.name}`])).values()];
    throw new InputError(
      `job ${job.id} has no step "${step}"`,
      names.length > 0 ? `its steps: ${names.join(', ')}` : 'it reported no steps yet',
    );
  }
  return found;
}

/**
 * The lines `--step` prints: each attempt's run of the step, and the line that says why that
 * attempt's machine was given up (which is why the step ran again).
 */
interface StepSection {
  step: JobStepRecord;
  lostSeq?: number;
}

function sectionsOf(table: StepTable, picked: JobStepRecord[]): StepSection[] {
  return picked.map((step) => {
    const lost = table.lost.find((l) => l.attempt === step.attempt);
    return lost ? { step, lostSeq: lost.logSeq } : { step };
  });
}

function sectionEnd(sec: StepSection): number {
  const last = sec.step.lastSeq ?? Infinity;
  return sec.lostSeq === undefined ? last : Math.max(last, sec.lostSeq);
}

function inSection(seq: number, sec: StepSection): boolean {
  const { firstSeq, lastSeq } = sec.step;
  return (
    seq === sec.lostSeq || ((firstSeq === null || seq >= firstSeq) && (lastSeq === null || seq <= lastSeq))
  );
}

const attemptLabel = (attempt: number, step?: JobStepRecord): string =>
  formatLogLine({
    seq: 0,
    stream: 'system',
    time: new Date(0),
    text: `── attempt ${attempt}${step ? `: step ${step.index} "${step.name}"` : ''} ──`,
  });

async function printJob(
  source: RunSource,
  job: JobRecord,
  prefix: string,
  opts: LogsOptions,
  out: NodeJS.WritableStream,
): Promise<JobRecord> {
  let table = await source.stepTable(job.id);
  // A page's lines go out in one write, and the next page is read once the output took it in: a
  // slow reader of the pipe holds the log back instead of the whole log piling up in memory.
  let pending = '';
  const write = (text: string): void => {
    pending += `${prefix}${text}\n`;
  };
  const flush = async (): Promise<void> => {
    if (pending === '') return;
    const taken = out.write(pending);
    pending = '';
    if (taken === false) await once(out, 'drain');
  };
  if (opts.step) {
    const sections = sectionsOf(table, findSteps(table.steps, opts.step, job));
    // Which attempt a run of the step belongs to matters only when there was more than one.
    const labelled = attemptsOf(table).length > 1;
    let at = 0;
    let shown = -1;
    pages: for await (const page of source.readLogPages(job.id, { follow: opts.follow })) {
      for (const line of page) {
        while (at < sections.length && line.seq > sectionEnd(sections[at])) at++;
        if (at >= sections.length) break pages;
        const sec = sections[at];
        if (!inSection(line.seq, sec)) continue;
        if (labelled && shown !== at) write(attemptLabel(sec.step.attempt, sec.step));
        shown = at;
        write(formatLogLine(line));
      }
      await flush();
    }
    await flush();
  } else {
    // A job retried on a fresh machine: each attempt's lines under a heading, the line that
    // says why the machine before was given up just before the next heading.
    const starts = (): Map<number, number> =>
      new Map(table.lost.map((l) => [l.logSeq + 1, l.attempt + 1] as const));
    let next = starts();
    for await (const page of source.readLogPages(job.id, { follow: opts.follow })) {
      for (const line of page) {
        if (line.seq === 1 && table.lost.length > 0) write(attemptLabel(1));
        const attempt = next.get(line.seq);
        if (attempt !== undefined) write(attemptLabel(attempt));
        write(formatLogLine(line));
        // Machines are lost while a followed log is read; the system line saying so is the cue.
        if (opts.follow && line.stream === 'system') {
          table = { ...table, lost: await source.listLostAttempts(job.id) };
          next = starts();
        }
      }
      await flush();
    }
  }
  return opts.follow || opts.exitStatus ? waitForJobEnd(source, job.id) : job;
}

export async function showLogs(cfg: Config, out: NodeJS.WritableStream, opts: LogsOptions): Promise<number> {
  if (remoteMode(cfg)) {
    const { remoteSession } = await import('./remote');
    const remote = remoteSession(cfg);
    return logsOf(remote.source, await remote.resolveTarget(opts.target, opts.jobName), out, opts);
  }
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
    return logsOf(storeSource(store), target, out, opts);
  });
}

async function logsOf(
  source: RunSource,
  target: Target,
  out: NodeJS.WritableStream,
  opts: LogsOptions,
): Promise<number> {
  if (target.kind === 'job') {
    const job = await printJob(source, target.job, '', opts, out);
    return opts.exitStatus ? exitCodeForState(job.state) : 0;
  }
  const { pipeline } = target;
  if (opts.follow && !opts.failed && !opts.step) {
    const p = await followPipeline(source, pipeline.id, out);
    return opts.exitStatus ? exitCodeForState(p.state) : 0;
  }
  const jobs = await source.listJobs(pipeline.id);
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
    const job = j.jobId ? await source.getJob(j.jobId) : undefined;
    if (!job) {
      out.write(`${prefix}(did not run: ${j.state}${j.message ? `, ${j.message}` : ''})\n`);
      continue;
    }
    await printJob(source, job, prefix, opts, out);
  }
  if (jobs.length > 1 && !opts.step) out.write(await formatSummary(source, chosen));
  const final =
    opts.exitStatus && pipeline.state === 'running'
      ? await waitForPipeline(source, pipeline.id)
      : pipeline.state;
  return opts.exitStatus ? exitCodeForState(final) : 0;
}

async function waitForPipeline(source: RunSource, pipelineId: string): Promise<string> {
  for (;;) {
    const p = await source.getPipeline(pipelineId);
    if (p && p.state !== 'running') return p.state;
    await new Promise((r) => setTimeout(r, 250));
  }
}
