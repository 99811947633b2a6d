/**
 * Steps of an Actions workflow job (docs/actions.md), as the runner runs them: each step's `if`
 * with the status functions, its `${{ }}` expressions (evaluated here, where the secrets' values and
 * the earlier steps' outputs are), the file commands ($GITHUB_ENV, $GITHUB_OUTPUT, $GITHUB_PATH,
 * $GITHUB_STEP_SUMMARY) and the workflow commands the runner acts on (`::add-mask::`).
 * `::group::` and `::error` lines stay in the log for the job page to show.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  evaluate,
  evaluateCondition,
  ExpressionFailure,
  interpolate,
  type ExpressionContexts,
  type ExpressionStatus,
} from '../model/actions-expressions';
import type { JobStep } from '../model/job-file';
import type { SecretMasker } from '../model/secret-mask';

/** The job-level part the planner wrote (workflow-file/actions/plan.ts ActionsJobContext). */
interface JobActions {
  contexts: Record<string, unknown>;
  env: [string, string][];
  defaults: { shell?: string; workingDirectory?: string };
  outputs: Record<string, string>;
  needs?: Record<string, string>;
}

export interface PreparedStep {
  /** Why the step does not run (its `if` is false), or undefined: it runs. */
  skip?: string;
  script: string;
  shell: string;
  shellArgs: string[];
  env: Record<string, string>;
  workingDirectory?: string;
  continueOnError: boolean;
  timeoutMs?: number;
  files: FileCommands;
}

interface FileCommands {
  env: string;
  output: string;
  path: string;
  summary: string;
}

/** A file command file's `NAME=value` and `NAME<<DELIMITER` ... `DELIMITER` entries. */
export function parseFileCommand(text: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc && (line.indexOf('=') < 0 || line.indexOf('<<') < line.indexOf('='))) {
      const value: string[] = [];
      let j = i + 1;
      for (; j < lines.length && lines[j] !== heredoc[2]; j++) value.push(lines[j]);
      out.push([heredoc[1], value.join('\n')]);
      i = j;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0) out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

export class ActionsJob {
  private readonly job: JobActions;
  /** The env context: workflow and job env evaluated, plus what $GITHUB_ENV added. */
  private readonly env: Record<string, string> = {};
  private readonly pathAdded: string[] = [];
  private readonly steps: Record<
    string,
    { outputs: Record<string, string>; outcome: string; conclusion: string }
  > = {};
  private failed = false;
  private cancelled = false;
  /** Summary text the steps wrote to $GITHUB_STEP_SUMMARY, in order. */
  readonly summaries: string[] = [];

  constructor(
    json: string,
    private readonly secrets: Record<string, string>,
    private readonly workdir: string,
    private readonly masker: SecretMasker,
    private readonly log: (text: string) => void,
    needsOutputs: Record<string, Record<string, string>> = {},
  ) {
    this.job = JSON.parse(json) as JobActions;
    // needs.<id>.outputs: what the needed jobs (every instance of a matrix job) reported.
    const needs = (this.job.contexts.needs ?? {}) as Record<
      string,
      { result: string; outputs: Record<string, string> }
    >;
    for (const [name, outputs] of Object.entries(needsOutputs)) {
      const id = this.job.needs?.[name];
      if (id && needs[id]) needs[id].outputs = { ...needs[id].outputs, ...outputs };
    }
    for (const [name, value] of this.job.env) this.env[name] = this.evaluateText(value, `env ${name}`);
  }

  private contexts(extraEnv: Record<string, string> = {}): ExpressionContexts {
    return {
      ...this.job.contexts,
      env: { ...this.env, ...extraEnv },
      secrets: this.secrets,
      steps: this.steps,
      job: { status: this.cancelled ? 'cancelled' : this.failed ? 'failure' : 'success' },
      runner: {
        ...(this.job.contexts.runner as object),
        temp: path.join(path.dirname(this.workdir), '.solstice-temp'),
        workspace: this.workdir,
      },
    };
  }

  private status(): ExpressionStatus {
    return { success: !this.failed, cancelled: this.cancelled, hashFiles: () => '' };
  }

  private evaluateText(text: string, what: string, extraEnv: Record<string, string> = {}): string {
    try {
      return interpolate(text, this.contexts(extraEnv), this.status());
    } catch (err) {
      if (err instanceof ExpressionFailure) throw new Error(`${what}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /** The job is being cancelled: only `always()` and `cancelled()` steps run from now on. */
  cancel(): void {
    this.cancelled = true;
  }

  /** The GITHUB_* variables every step sees, besides the file command paths. */
  private githubEnv(): Record<string, string> {
    const g = this.job.contexts.github as Record<string, unknown>;
    const s = (v: unknown): string =>
      typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
    return {
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: this.workdir,
      GITHUB_SHA: s(g.sha),
      GITHUB_REF: s(g.ref),
      GITHUB_REF_NAME: s(g.ref_name),
      GITHUB_REF_TYPE: s(g.ref_type),
      GITHUB_EVENT_NAME: s(g.event_name),
      GITHUB_REPOSITORY: s(g.repository),
      GITHUB_HEAD_REF: s(g.head_ref),
      GITHUB_BASE_REF: s(g.base_ref),
      GITHUB_WORKFLOW: s(g.workflow),
      RUNNER_OS: 'Linux',
      RUNNER_TEMP: path.join(path.dirname(this.workdir), '.solstice-temp'),
    };
  }

  /** What to run for a step: skipped by its `if`, or its evaluated script and environment. */
  async prepare(step: JobStep, index: number, scriptDir: string): Promise<PreparedStep> {
    const a = step.actions;
    const files: FileCommands = {
      env: path.join(scriptDir, `step-${index}.env`),
      output: path.join(scriptDir, `step-${index}.output`),
      path: path.join(scriptDir, `step-${index}.path`),
      summary: path.join(scriptDir, `step-${index}.summary`),
    };
    const base = {
      shell: 'sh',
      shellArgs: [],
      env: {},
      continueOnError: step.continueOnError,
      files,
      script: '',
    };
    // Step env is evaluated in order, each seeing the ones before it (as GitHub does).
    const stepEnv: Record<string, string> = {};
    for (const [name, value] of a?.env ?? [])
      stepEnv[name] = this.evaluateText(value, `env ${name}`, stepEnv);
    let runs: boolean;
    try {
      runs = evaluateCondition(a?.if, this.contexts(stepEnv), this.status());
    } catch (err) {
      throw new Error(`if: ${(err as Error).message}`, { cause: err });
    }
    if (!runs) return { ...base, skip: `its if (${a?.if ?? 'success()'}) is false` };
    for (const f of Object.values(files)) await writeFile(f, '');
    const script = a?.builtIn ? step.run : this.evaluateText(step.run, 'run', stepEnv);
    const shell = a?.shell ?? this.job.defaults.shell ?? 'bash';
    let continueOnError = step.continueOnError;
    if (a?.continueOnError !== undefined) {
      const v = evaluate(a.continueOnError, this.contexts(stepEnv), this.status());
      continueOnError = v === true || v === 'true';
    }
    const wd = step.workingDirectory ?? this.job.defaults.workingDirectory;
    const pathVar = [...this.pathAdded].reverse().join(':');
    return {
      script,
      // As GitHub runs them: bash without profiles, stopping at the first failing command of a pipe too.
      shell: shell === 'sh' ? '/bin/sh' : 'bash',
      shellArgs: shell === 'sh' ? ['-e'] : ['--noprofile', '--norc', '-eo', 'pipefail'],
      env: {
        ...this.githubEnv(),
        ...this.env,
        ...stepEnv,
        GITHUB_ENV: files.env,
        GITHUB_OUTPUT: files.output,
        GITHUB_PATH: files.path,
        GITHUB_STEP_SUMMARY: files.summary,
        ...(pathVar ? { PATH: `${pathVar}:${process.env.PATH ?? ''}` } : {}),
      },
      ...(wd ? { workingDirectory: wd } : {}),
      continueOnError,
      ...(a?.timeoutMs ? { timeoutMs: a.timeoutMs } : {}),
      files,
    };
  }

  /** After a step ran: read its file commands and record its outcome for `steps` and the status functions. */
  async finish(
    step: JobStep,
    prepared: PreparedStep | undefined,
    outcome: 'success' | 'failure' | 'skipped',
  ): Promise<void> {
    const outputs: Record<string, string> = {};
    if (prepared && !prepared.skip) {
      const read = async (f: string): Promise<string> => readFile(f, 'utf8').catch(() => '');
      for (const [k, v] of parseFileCommand(await read(prepared.files.env))) this.env[k] = v;
      for (const [k, v] of parseFileCommand(await read(prepared.files.output))) outputs[k] = v;
      for (const p of (await read(prepared.files.path)).split(/\r?\n/))
        if (p.trim() !== '') this.pathAdded.push(p.trim());
      const summary = await read(prepared.files.summary);
      if (summary.trim() !== '') this.summaries.push(summary);
    }
    const conclusion = outcome === 'failure' && prepared?.continueOnError ? 'success' : outcome;
    if (conclusion === 'failure') this.failed = true;
    if (step.actions?.id) this.steps[step.actions.id] = { outputs, outcome, conclusion };
  }

  /** The job's outputs, evaluated after its steps (for `needs.<job>.outputs`). */
  outputs(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.job.outputs)) {
      try {
        out[k] = this.masker.maskLine(this.evaluateText(v, `outputs.${k}`));
      } catch (err) {
        this.log(`job output ${k}: ${(err as Error).message}`);
      }
    }
    return out;
  }

  /**
   * A workflow command in a line of the step's output: `::add-mask::value` masks value from now on
   * (the line itself shows it masked). Other lines pass unchanged.
   */
  onLine = (text: string): string => {
    const m = /^::add-mask::(.*)$/.exec(text);
    if (!m) return text;
    this.masker.add(m[1], 1);
    return '::add-mask::***';
  };
}
