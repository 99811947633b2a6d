/**
 * What `solstice workflow validate|show` print, loaded when one of them runs (the parser is not
 * needed by any other command).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ACTIONS_WORKFLOW_DIRS, JOB_SCRIPT_PATH } from '../model/job-definition-paths';
import { loadConfig } from '../platform/config';
import { pickWorkflowFiles, planActions, type ActionsPlan } from '../workflow-file/actions';
import type { Diagnostic } from '../workflow-file';
import { InputError } from '../platform/errors';
import {
  checkReport,
  expandJob,
  formatDiagnostics,
  formatDuration,
  jobGraph,
  parseWorkflowFile,
  summarise,
  WORKFLOW_FILE_PATH,
  type Job,
  type ParseResult,
  type WorkflowFile,
} from '../workflow-file';

export { formatDiagnostics, summarise };

export type { ActionsPlan };

/** Reads and parses the file; a missing file is an InputError (nothing to validate). */
export function loadWorkflowFile(
  fileArg: string | undefined,
  knownLabels: string[],
): { display: string; source: string; result: ParseResult } {
  const file = fileArg ? path.resolve(fileArg) : path.join(repoRoot(process.cwd()), WORKFLOW_FILE_PATH);
  const display = path.relative(process.cwd(), file) || file;
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const jobSh = path.join(path.dirname(file), path.basename(JOB_SCRIPT_PATH));
      throw new InputError(
        `no workflow file at ${display}`,
        fs.existsSync(jobSh) && !fileArg
          ? `this repository runs ${path.relative(process.cwd(), jobSh)} as a one-job pipeline; to describe jobs and steps, create ${WORKFLOW_FILE_PATH} (see docs/workflow-file.md)`
          : `create ${WORKFLOW_FILE_PATH} (see docs/workflow-file.md), or pass the file's path`,
      );
    }
    if (code === 'EISDIR') throw new InputError(`${display} is a directory`, 'pass the workflow file itself');
    throw new InputError(`cannot read ${display}: ${(err as Error).message}`);
  }
  return { display, source, result: parseWorkflowFile(source, { knownLabels }) };
}

export function jsonReport(display: string, result: ParseResult): string {
  return `${JSON.stringify({ file: display, ...checkReport(result) })}\n`;
}

/**
 * The Actions workflow files to read instead of KDL: the one given (a .yml/.yaml path), or, with
 * no path and no KDL file, the repository's (docs/actions.md). Undefined: this is about KDL.
 */
export function findActionsFiles(fileArg: string | undefined): { root: string; files: string[] } | undefined {
  if (fileArg) {
    if (!/\.ya?ml$/.test(fileArg)) return undefined;
    return { root: process.cwd(), files: [fileArg] };
  }
  const root = repoRoot(process.cwd());
  if (fs.existsSync(path.join(root, WORKFLOW_FILE_PATH)) || fs.existsSync(path.join(root, JOB_SCRIPT_PATH)))
    return undefined;
  const listed = ACTIONS_WORKFLOW_DIRS.flatMap((d) => {
    try {
      return fs.readdirSync(path.join(root, d)).map((n) => `${d}/${n}`);
    } catch {
      return [];
    }
  });
  const files = pickWorkflowFiles(listed);
  return files.length > 0 ? { root, files } : undefined;
}

/** Every Actions workflow planned as if it ran (jobs' `if` unapplied), with each file's errors. */
export async function loadActions(found: { root: string; files: string[] }): Promise<{
  plan: ActionsPlan;
  sources: Map<string, string>;
}> {
  const sources = new Map<string, string>();
  for (const f of found.files) {
    try {
      sources.set(f, fs.readFileSync(path.resolve(found.root, f), 'utf8'));
    } catch (err) {
      throw new InputError(`cannot read ${f}: ${(err as Error).message}`);
    }
  }
  const plan = await planActions(
    [...sources].map(([p, text]) => ({ path: p, text })),
    { event: 'push', sha: 'HEAD' },
    { runsOn: loadConfig({}).actionsRunsOn, evenWithErrors: true, anyEvent: true },
  );
  return { plan, sources };
}

export function actionsReport(plan: ActionsPlan, files: string[]): string {
  const byFile = new Map<string, Diagnostic[]>(files.map((f) => [f, []]));
  for (const e of plan.errors) byFile.get(e.path)?.push(...e.diagnostics);
  const errors = plan.errors.reduce((n, e) => n + e.diagnostics.length, 0);
  return `${JSON.stringify({
    files: [...byFile].map(([file, diagnostics]) => ({ file, ok: diagnostics.length === 0, diagnostics })),
    ok: errors === 0,
    errors,
    jobs: plan.jobs,
  })}\n`;
}

/** Prints each file's errors; returns how many there were. */
export function printActionsDiagnostics(
  plan: ActionsPlan,
  sources: Map<string, string>,
  to: NodeJS.WritableStream,
): number {
  let errors = 0;
  for (const e of plan.errors) {
    errors += e.diagnostics.length;
    to.write(formatDiagnostics(e.path, e.diagnostics, { source: sources.get(e.path) ?? '' }));
  }
  return errors;
}

/** `validate`'s last line for one Actions file. */
export function actionsFileSummary(plan: ActionsPlan, file: string): string {
  const mine = plan.errors.find((e) => e.path === file)?.diagnostics ?? [];
  return mine.length === 0
    ? `${file}: valid, ${plural(plan.jobs.filter((j) => j.name.startsWith(`${workflowStemOf(file)}/`)).length, 'job')}\n`
    : `${file}: ${summarise(mine)}\n`;
}

/** What `workflow show` prints: every job, then the order the jobs run in. */
export function formatWorkflow(display: string, wf: WorkflowFile): string {
  const out: string[] = [
    `workflow ${wf.name ? `"${wf.name}" ` : ''}(${display}): ${plural(wf.jobs.length, 'job')}`,
  ];
  for (const job of wf.jobs) out.push('', ...describeJob(job));
  const graph = jobGraph(wf.jobs);
  out.push('', 'order (jobs in one stage run in parallel):');
  graph.stages.forEach((stage, i) => out.push(`  stage ${i + 1}: ${stage.join(', ')}`));
  for (const job of wf.jobs.filter((j) => j.needs.length > 0)) {
    out.push(`  ${job.id} needs ${[...new Set(job.needs)].join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}

function describeJob(job: Job): string[] {
  const facts = [`runs-on ${job.runsOn}`];
  if (job.timeoutMs !== undefined) facts.push(`timeout ${formatDuration(job.timeoutMs)}`);
  const lines = [`job ${job.id} (${facts.join(', ')})`];
  const row = (key: string, value: string) => lines.push(`  ${key.padEnd(10)}${value}`);
  if (job.needs.length > 0) row('needs', job.needs.join(', '));
  const when = [
    job.when.events ? `events ${job.when.events.join(', ')}` : '',
    job.when.branches ? `branches ${job.when.branches.join(', ')}` : '',
  ].filter(Boolean);
  if (when.length > 0) row('when', when.join('; '));
  const env = Object.entries(job.env);
  if (env.length > 0) row('env', env.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' '));
  if (job.matrix) {
    const instances = expandJob(job);
    row('matrix', job.matrix.axes.map((a) => `${a.name}: ${a.values.join(', ')}`).join('; '));
    for (const instance of instances) row('', `${instance.id} on ${instance.runsOn}`);
  }
  lines.push('  steps');
  const width = Math.max(...job.steps.map((s) => s.name.length));
  job.steps.forEach((step, i) => {
    const script = step.run.trim().split('\n');
    const notes = [
      step.workingDirectory ? `in ${step.workingDirectory}` : '',
      step.continueOnError ? 'continue on error' : '',
      script.length > 1 ? `+${plural(script.length - 1, 'line')}` : '',
    ].filter(Boolean);
    lines.push(
      `    ${i + 1}. ${step.name.padEnd(width)}  ${script[0]}${notes.length ? `  [${notes.join(', ')}]` : ''}`,
    );
  });
  if (job.artifacts.length > 0) row('artifacts', job.artifacts.join(', '));
  return lines;
}

export function workflowStemOf(file: string): string {
  return (file.split('/').pop() ?? file).replace(/\.ya?ml$/, '');
}

/** What `workflow show` prints for Actions workflows: every expanded job with its steps. */
export function formatActionsPlan(plan: ActionsPlan): string {
  const out: string[] = [
    `${plural(plan.jobs.length, 'job')} from ${plan.workflows.join(', ') || 'no workflow'}`,
  ];
  for (const job of plan.jobs) {
    out.push(
      '',
      `job ${job.name} (runs-on ${job.runsOn}${job.timeoutMs ? `, timeout ${formatDuration(job.timeoutMs)}` : ''})`,
    );
    if (job.needs.length > 0) out.push(`  needs     ${job.needs.join(', ')}`);
    if (job.skipReason) out.push(`  skipped   ${job.skipReason}`);
    out.push('  steps');
    (job.steps ?? []).forEach((s, i) => {
      const script = s.run.trim().split('\n');
      const notes = [
        s.actions?.if ? `if ${s.actions.if}` : '',
        s.workingDirectory ? `in ${s.workingDirectory}` : '',
        s.continueOnError ? 'continue on error' : '',
        script.length > 1 ? `+${plural(script.length - 1, 'line')}` : '',
      ].filter(Boolean);
      out.push(`    ${i + 1}. ${s.name}${notes.length ? `  [${notes.join(', ')}]` : ''}`);
    });
    if (job.artifacts?.length) out.push(`  artifacts ${job.artifacts.join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function repoRoot(cwd: string): string {
  try {
    return execFileSync('git', ['rev-parse', '--show-toplevel'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return cwd;
  }
}
