/**
 * `solstice workflow validate|show`: check and inspect `.solstice/workflow.kdl` locally, before
 * pushing (the original's cidev). Problems print as `file:line:col: error: message`.
 */
import { Command, Option } from 'clipanion';
import { ACTIONS_WORKFLOW_DIRS, WORKFLOW_FILE_PATH } from '../../model/job-definition-paths';
import { readSetting, SETTINGS } from '../../platform/config';
import { DEFAULT_RUNS_ON } from '../../workflow-file/model';
import type { ActionsPlan } from '../workflow-report';

const report = () => import('../workflow-report');
type Report = Awaited<ReturnType<typeof report>>;

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

  protected async load() {
    const r = await report();
    return { r, ...r.loadWorkflowFile(this.file, this.knownLabels()) };
  }

  /**
   * Validate's and show's path for Actions workflows (a .yml path, or a repository without
   * .solstice files): --json, or each file's diagnostics on `diagnostics` and then `print`.
   * Undefined: this is about KDL.
   */
  protected async runActions(
    diagnostics: NodeJS.WritableStream,
    print: (r: Report, plan: ActionsPlan, files: string[]) => string,
  ): Promise<number | undefined> {
    const r = await report();
    const found = r.findActionsFiles(this.file);
    if (!found) return undefined;
    const { plan, sources } = await r.loadActions(found);
    if (this.json) {
      this.context.stdout.write(r.actionsReport(plan, found.files));
      return plan.errors.length === 0 ? 0 : 1;
    }
    const errors = r.printActionsDiagnostics(plan, sources, diagnostics);
    this.context.stdout.write(print(r, plan, found.files));
    return errors === 0 ? 0 : 1;
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
    const actions = await this.runActions(this.context.stdout, (r, plan, files) =>
      files.map((f) => r.actionsFileSummary(plan, f)).join(''),
    );
    if (actions !== undefined) return actions;
    const { r, display, source, result } = await this.load();
    const { formatDiagnostics, plural, summarise } = r;
    if (this.json) {
      this.context.stdout.write(r.jsonReport(display, result));
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
    const actions = await this.runActions(this.context.stderr, (r, plan) => r.formatActionsPlan(plan));
    if (actions !== undefined) return actions;
    const { r, display, source, result } = await this.load();
    const { formatDiagnostics, summarise } = r;
    if (this.json) {
      this.context.stdout.write(r.jsonReport(display, result));
      return result.ok ? 0 : 1;
    }
    if (!result.workflow) {
      this.context.stderr.write(formatDiagnostics(display, result.diagnostics, { source }));
      this.context.stderr.write(`${display}: ${summarise(result.diagnostics)}\n`);
      return 1;
    }
    this.context.stderr.write(formatDiagnostics(display, result.diagnostics, { source }));
    this.context.stdout.write(r.formatWorkflow(display, result.workflow));
    return 0;
  }
}

function splitLabels(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
