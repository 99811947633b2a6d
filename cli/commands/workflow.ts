/**
 * `solstice workflow validate|show`: check and inspect `.solstice/workflow.kdl` locally, before
 * pushing (the original's cidev). Problems print as `file:line:col: error: message`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'clipanion';
import { ACTIONS_WORKFLOW_DIRS, JOB_SCRIPT_PATH } from '../../model/job-definition-paths';
import { loadConfig } from '../../platform/config';
import { pickWorkflowFiles, planActions, type ActionsPlan } from '../../workflow-file/actions';
import type { Diagnostic } from '../../workflow-file';
import { readSetting, SETTINGS } from '../../platform/config';
import { InputError } from '../../platform/errors';
import {
  DEFAULT_RUNS_ON,
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
} from '../../workflow-file';

const LABELS_ENV = SETTINGS.workflowLabels.env;

abstract class WorkflowFileCommand extends Command {
  file = Option.String({ name: 'file', required: false });
  labels = Option.Array('--label', {
    description: `A runs-on label the image map knows; repeat for more [env: ${LABELS_ENV}, comma-separated; default: ${DEFAULT_RUNS_ON}]`,
  });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });
  verbose = Option.Boolean('--verbose', false, {
    description: `Print stack traces of errors [env: ${SETTINGS.debug.env}]`,
  });

  protected knownLabels(): string[] {
    if (this.labels && this.labels.length > 0) return this.labels.flatMap(splitLabels);
    const fromEnv = readSetting('workflowLabels');
    if (fromEnv && fromEnv.length > 0) return fromEnv;
    return [DEFAULT_RUNS_ON];
  }

  /**
   * The Actions workflow files to read instead of KDL: the one given (a .yml/.yaml path), or, with
   * no path and no KDL file, the repository's (docs/actions.md). Undefined: this is about KDL.
   */
  protected actionsFiles(): { root: string; files: string[] } | undefined {
    if (this.file) {
      if (!/\.ya?ml$/.test(this.file)) return undefined;
      return { root: process.cwd(), files: [this.file] };
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
  protected async loadActions(found: { root: string; files: string[] }): Promise<{
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

  protected actionsReport(plan: ActionsPlan, files: string[]): string {
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

  protected printActionsDiagnostics(
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

  /** Reads and parses the file; a missing file is an InputError (nothing to validate). */
  protected load(): { display: string; source: string; result: ParseResult } {
    const file = this.file ? path.resolve(this.file) : path.join(repoRoot(process.cwd()), WORKFLOW_FILE_PATH);
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
          fs.existsSync(jobSh) && !this.file
            ? `this repository runs ${path.relative(process.cwd(), jobSh)} as a one-job pipeline; to describe jobs and steps, create ${WORKFLOW_FILE_PATH} (see docs/workflow-file.md)`
            : `create ${WORKFLOW_FILE_PATH} (see docs/workflow-file.md), or pass the file's path`,
        );
      }
      if (code === 'EISDIR')
        throw new InputError(`${display} is a directory`, 'pass the workflow file itself');
      throw new InputError(`cannot read ${display}: ${(err as Error).message}`);
    }
    return { display, source, result: parseWorkflowFile(source, { knownLabels: this.knownLabels() }) };
  }

  protected jsonReport(display: string, result: ParseResult): string {
    const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
    const graph = result.workflow ? jobGraph(result.workflow.jobs) : undefined;
    return `${JSON.stringify({
      file: display,
      ok: result.ok,
      errors,
      warnings: result.diagnostics.length - errors,
      diagnostics: result.diagnostics,
      workflow: result.workflow ?? null,
      graph: graph ? { order: graph.order, stages: graph.stages } : null,
    })}\n`;
  }
}

export class WorkflowValidateCommand extends WorkflowFileCommand {
  static override paths = [['workflow', 'validate']];
  static override usage = Command.Usage({
    description: `Check a workflow file (${WORKFLOW_FILE_PATH}) for errors`,
    details: `
      Parses the file as KDL and checks it against the workflow language (docs/workflow-file.md):
      unknown nodes and properties (with a "did you mean"), duplicate job ids, unknown \`needs\`,
      dependency cycles, bad durations, and \`runs-on\` labels missing from the image map (a warning).

      Each problem prints as \`file:line:col: error: message\` with the line and a hint. Exits 0 when
      the file is valid (warnings allowed), 1 when it has errors, 2 when there is no file to read.

      Without a path, validates \`${WORKFLOW_FILE_PATH}\` at the root of the current git repository,
      or, when the repository has no .solstice files, its Actions workflows (the first of
      ${ACTIONS_WORKFLOW_DIRS.join(', ')} that has any; docs/actions.md). A .yml/.yaml path is read as
      an Actions workflow: errors (with what Solstice does not run yet) have file, line and column.
    `,
    examples: [
      ['Validate the current repository', 'solstice workflow validate'],
      ['Validate a file, machine-readable', 'solstice workflow validate --json ci/workflow.kdl'],
      ['Also accept the label debian-12', 'solstice workflow validate --label local --label debian-12'],
    ],
  });

  async execute(): Promise<number> {
    const actions = this.actionsFiles();
    if (actions) {
      const { plan, sources } = await this.loadActions(actions);
      if (this.json) {
        this.context.stdout.write(this.actionsReport(plan, actions.files));
        return plan.errors.length === 0 ? 0 : 1;
      }
      const errors = this.printActionsDiagnostics(plan, sources, this.context.stdout);
      for (const f of actions.files) {
        const mine = plan.errors.find((e) => e.path === f)?.diagnostics ?? [];
        this.context.stdout.write(
          mine.length === 0
            ? `${f}: valid, ${plural(plan.jobs.filter((j) => j.name.startsWith(`${workflowStemOf(f)}/`)).length, 'job')}\n`
            : `${f}: ${summarise(mine)}\n`,
        );
      }
      return errors === 0 ? 0 : 1;
    }
    const { display, source, result } = this.load();
    if (this.json) {
      this.context.stdout.write(this.jsonReport(display, result));
    } else {
      this.context.stdout.write(formatDiagnostics(display, result.diagnostics, { source }));
      this.context.stdout.write(
        result.ok
          ? `${display}: valid, ${plural(result.workflow!.jobs.length, 'job')}${result.diagnostics.length ? `, ${plural(result.diagnostics.length, 'warning')}` : ''}\n`
          : `${display}: ${summarise(result.diagnostics)}\n`,
      );
    }
    return result.ok ? 0 : 1;
  }
}

export class WorkflowShowCommand extends WorkflowFileCommand {
  static override paths = [['workflow', 'show']];
  static override usage = Command.Usage({
    description: "Show a workflow file's jobs, steps and dependency graph",
    details: `
      Prints every job (label, needs, timeout, conditions, env, matrix, steps, artifacts) and the
      order jobs run in: stage by stage, where the jobs of one stage can run in parallel.
      A file with errors prints them as \`workflow validate\` does and exits 1.

      Without a path, shows \`${WORKFLOW_FILE_PATH}\` at the root of the current git repository, or
      its Actions workflows as validate finds them: every job expanded (matrix instances, the
      machine label its runs-on maps to) with its steps.
    `,
    examples: [
      ['Show the current repository', 'solstice workflow show'],
      ['Show a file as JSON (workflow and DAG)', 'solstice workflow show --json ci/workflow.kdl'],
    ],
  });

  async execute(): Promise<number> {
    const actions = this.actionsFiles();
    if (actions) {
      const { plan, sources } = await this.loadActions(actions);
      if (this.json) {
        this.context.stdout.write(this.actionsReport(plan, actions.files));
        return plan.errors.length === 0 ? 0 : 1;
      }
      const errors = this.printActionsDiagnostics(plan, sources, this.context.stderr);
      this.context.stdout.write(formatActionsPlan(plan));
      return errors === 0 ? 0 : 1;
    }
    const { display, source, result } = this.load();
    if (this.json) {
      this.context.stdout.write(this.jsonReport(display, result));
      return result.ok ? 0 : 1;
    }
    if (!result.workflow) {
      this.context.stderr.write(formatDiagnostics(display, result.diagnostics, { source }));
      this.context.stderr.write(`${display}: ${summarise(result.diagnostics)}\n`);
      return 1;
    }
    this.context.stderr.write(formatDiagnostics(display, result.diagnostics, { source }));
    this.context.stdout.write(formatWorkflow(display, result.workflow));
    return 0;
  }
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

function workflowStemOf(file: string): string {
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

function splitLabels(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function plural(n: number, word: string): string {
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
