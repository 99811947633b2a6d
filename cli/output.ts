/** How the CLI shows things to people: log lines, job summaries, errors. */
import type { JobRecord, JobStepRecord, LogLineRecord, StepTable } from '../storage/job-store';
import { attemptsOf } from '../storage/step-table';
import { readSetting } from '../platform/config';
import { SolsticeError } from '../platform/errors';
import { repoAtCommit } from '../model/repo-url';

const useColor = process.stdout.isTTY && !readSetting('noColor');
const paint = (code: number, s: string) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : s);

export function formatLogLine(line: LogLineRecord): string {
  if (line.stream === 'stderr') return paint(33, line.text);
  if (line.stream === 'system' || line.stream === 'console') return paint(2, line.text);
  return line.text;
}

export function stateLabel(state: string): string {
  const color = { success: 32, failure: 31, error: 35, cancelled: 90, skipped: 90, running: 36 }[state];
  return color ? paint(color, state) : state;
}

/** One way to write a duration for people: `850ms`, `12.3s`, `4m 05s`, `2h 03m`. */
export function formatElapsed(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One way to write a point in time for people: how long ago (`3m 05s ago`), `-` when unset. */
export function ago(d: Date | null, now = new Date()): string {
  return d ? `${formatElapsed(Math.max(0, now.getTime() - d.getTime()))} ago` : '-';
}

/** A job's run time so far (running) or in all (finished); `-` before it started. */
export function formatJobDuration(job: Pick<JobRecord, 'startedAt' | 'finishedAt'>): string {
  if (!job.startedAt) return '-';
  return formatElapsed((job.finishedAt ?? new Date()).getTime() - job.startedAt.getTime());
}

/** Rows as aligned columns, the first row the header; colours are added after padding. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r, ri) =>
      r
        .map((cell, i) => {
          const padded = i === r.length - 1 ? cell : cell.padEnd(widths[i]);
          return ri > 0 && i === 1 ? padded.replace(cell, stateLabel(cell)) : padded;
        })
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

export function formatJob(job: JobRecord, extra: Record<string, string> = {}): string {
  const rows: [string, string][] = [
    ['job', job.id],
    ['state', stateLabel(job.state)],
    ['exit code', job.exitCode === null ? '-' : String(job.exitCode)],
    ['repo', job.repoUrl],
    ['commit', job.commitSha],
    ['ref', job.ref ?? '-'],
    ['label', job.label],
    ['attempt', String(job.attempt)],
    ['created', ago(job.createdAt)],
    ['started', ago(job.startedAt)],
    ['finished', ago(job.finishedAt)],
    ['duration', formatJobDuration(job)],
    ['workflow', job.workflowId],
    ...Object.entries(extra),
  ];
  if (job.message) rows.splice(3, 0, ['message', job.message]);
  return rows.map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n');
}

/** `solstice jobs`: one row per job, its name (with matrix values) from its pipeline. */
export function formatJobRows(jobs: JobRecord[], names: Map<string, string>): string {
  const rows = [['ID', 'STATE', 'JOB', 'REPO@COMMIT', 'REF', 'CREATED', 'DURATION']];
  for (const job of jobs)
    rows.push([
      job.id,
      job.state,
      names.get(job.id) ?? '-',
      repoAtCommit(job.repoUrl, job.commitSha),
      job.ref ?? '-',
      ago(job.createdAt),
      formatJobDuration(job),
    ]);
  return formatTable(rows);
}

export function printError(err: unknown, verbose: boolean): number {
  if (err instanceof SolsticeError) {
    process.stderr.write(`${paint(31, 'error:')} ${err.message}\n`);
    if (err.hint) process.stderr.write(`${paint(2, 'hint:')}  ${err.hint}\n`);
    if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  process.stderr.write(`${paint(31, 'error:')} ${err instanceof Error ? err.message : String(err)}\n`);
  if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  else
    process.stderr.write(
      `${paint(2, 'This is a bug or an unexpected failure; run with --verbose for details.')}\n`,
    );
  return 1;
}

/** Exit status of `enqueue --follow` and `ci-local`, documented in their --help. */
export function exitCodeForState(state: string): number {
  return { success: 0, failure: 1, error: 3, cancelled: 4 }[state] ?? 3;
}

/**
 * The steps block of `solstice status`: one line per step, empty when none were reported yet. A
 * job that ran on more than one machine shows each attempt's steps under its own heading, with
 * why the machine before was given up between them.
 */
export function formatSteps(table: StepTable, indent = ''): string {
  const attempts = attemptsOf(table);
  if (attempts.length === 0) return '';
  const width = Math.max(0, ...table.steps.map((s) => s.name.length));
  const row = (s: JobStepRecord, pad: string): string => {
    const exit = s.exitCode === null ? '' : ` exit ${s.exitCode}`;
    const took = s.durationMs === null ? '' : ` ${formatElapsed(s.durationMs)}`;
    const coe = s.continueOnError && s.outcome === 'failure' ? ' (continue-on-error)' : '';
    return `${pad}${String(s.index).padStart(2)}. ${s.name.padEnd(width)}  ${stateLabel(s.outcome)}${exit}${took}${coe}`;
  };
  if (attempts.length === 1 && !attempts[0].lost)
    return `${indent}steps\n${attempts[0].steps.map((s) => row(s, `${indent}  `)).join('\n')}\n`;
  const lines = [`${indent}steps`];
  for (const a of attempts) {
    lines.push(`${indent}  attempt ${a.attempt}${a.steps.length === 0 ? ' (no steps reported)' : ''}`);
    lines.push(...a.steps.map((s) => row(s, `${indent}    `)));
    if (a.lost) lines.push(`${indent}  ${paint(35, a.lost.message)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The services `up` and `ci-local` started, one `name  address` line each. */
export function formatStackUrls(urls: Record<string, string>): string {
  return Object.entries(urls)
    .map(([k, v]) => `  ${k.padEnd(22)} ${v}\n`)
    .join('');
}
