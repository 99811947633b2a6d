/**
 * Actions workflow files + a trigger → the jobs of one pipeline (or located diagnostics). A pure
 * function of its inputs: the caller reads the files (activities/pipeline-plan.ts), so this can run
 * wherever planning runs.
 *
 * Every workflow whose `on:` matches is a group of the one pipeline: its jobs are named
 * `<file stem>/<job id>` (`ci/test (ubuntu, 18)` for a matrix instance), so the Web UI, the job
 * page and the forge list them by workflow.
 */
import type { PipelineEvent, PlannedJob } from '../../model/domain';
import { ACTIONS_WORKFLOW_DIRS } from '../../model/job-definition-paths';
import type { JobStep } from '../../model/job-file';
import {
  evaluateCondition,
  evaluateValue,
  expressionSpans,
  ExpressionFailure,
  interpolate,
  usesStatusFunction,
} from '../../model/actions-expressions';
import type { Diagnostic } from '../model';
import type { ActionsWorkflow, EventFilter } from './model';
import { parseActionsWorkflow } from './parse';

export interface ActionsTrigger {
  event: PipelineEvent;
  /** `refs/heads/main`, `refs/tags/v1`, ... */
  ref?: string;
  sha: string;
  repoUrl?: string;
  /** Files the push or pull request changed; absent: unknown, so `paths` filters match. */
  changedFiles?: string[];
  /** Base branch of a pull request (what its `branches` filter matches). */
  baseRef?: string;
  /** `solstice enqueue --workflow F`: only that file runs, as workflow_dispatch, with these inputs. */
  dispatch?: { workflow: string; inputs: Record<string, string> };
}

export interface ActionsPlanOptions {
  /** Solstice label → the Actions labels its machines provide (`runs-on` matches a subset). */
  runsOn: Record<string, string[]>;
  /**
   * Also list the jobs of files with errors about what Solstice does not run (for `workflow
   * show` and the fixtures' tests). Such a plan must not be run.
   */
  evenWithErrors?: boolean;
  /** Plan every workflow whatever its `on:` (`workflow show`): as its first event, jobs' `if` unapplied. */
  anyEvent?: boolean;
}

export interface FileDiagnostics {
  path: string;
  diagnostics: Diagnostic[];
}

export interface ActionsPlan {
  /** Paths of the workflows that run for this trigger. */
  workflows: string[];
  jobs: PlannedJob[];
  /** A push cancels the older running pipelines of its branch: a running workflow has `cancel-in-progress: true`. */
  cancelSuperseded: boolean;
  /** Errors of files that would run (a broken file that would not run is not this trigger's business). */
  errors: FileDiagnostics[];
}

/**
 * Which files are the commit's Actions workflows: the `.yml`/`.yaml` files directly in the first of
 * ACTIONS_WORKFLOW_DIRS that has any, as Forgejo reads them (a repository mirrored from GitHub
 * with its own `.forgejo/workflows` runs only those).
 */
export function pickWorkflowFiles(paths: readonly string[]): string[] {
  for (const dir of ACTIONS_WORKFLOW_DIRS) {
    const found = paths.filter(
      (p) => p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes('/') && /\.ya?ml$/.test(p),
    );
    if (found.length > 0) return [...found].sort();
  }
  return [];
}

/** `ci.yml` → `ci`. */
export function workflowStem(path: string): string {
  return (path.split('/').pop() ?? path).replace(/\.ya?ml$/, '');
}

/**
 * A branch, tag or path filter pattern as GitHub documents it: `*` any characters but `/`, `**`
 * any characters, `?` / `+` zero-or-one / one-or-more of the preceding character, `[...]` a range.
 */
export function filterPattern(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?' || c === '+') re += c;
    else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.^${}()|\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Patterns in order, `!` negating; the last one that matches decides (GitHub's rule). */
function matchesPatterns(value: string, patterns: string[]): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (filterPattern(p.slice(1)).test(value)) matched = false;
    } else if (filterPattern(p).test(value)) matched = true;
  }
  return matched;
}

function refFilterMatches(filter: EventFilter, ref: string | undefined, isPullRequest: boolean): boolean {
  const tag = ref?.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : undefined;
  const branch = ref?.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : ref;
  const hasBranch = filter.branches !== undefined || filter.branchesIgnore !== undefined;
  const hasTag = !isPullRequest && (filter.tags !== undefined || filter.tagsIgnore !== undefined);
  if (tag !== undefined && !isPullRequest) {
    // Only branch filters: the workflow does not run for tags (and the other way round).
    if (!hasTag) return !hasBranch;
    if (filter.tags && !matchesPatterns(tag, filter.tags)) return false;
    if (filter.tagsIgnore && matchesPatterns(tag, filter.tagsIgnore)) return false;
    return true;
  }
  if (!hasBranch) return !hasTag;
  if (branch === undefined) return false;
  if (filter.branches && !matchesPatterns(branch, filter.branches)) return false;
  if (filter.branchesIgnore && matchesPatterns(branch, filter.branchesIgnore)) return false;
  return true;
}

function pathFilterMatches(filter: EventFilter, changed: string[] | undefined): boolean {
  if (changed === undefined) return true;
  if (filter.paths) {
    const paths = filter.paths;
    if (!changed.some((f) => matchesPatterns(f, paths))) return false;
  }
  if (filter.pathsIgnore) {
    const ignore = filter.pathsIgnore;
    if (changed.every((f) => matchesPatterns(f, ignore))) return false;
  }
  return true;
}

/** Whether the workflow runs for the trigger, and as which GitHub event. */
export function workflowEvent(wf: ActionsWorkflow, t: ActionsTrigger): string | undefined {
  if (t.dispatch) return t.dispatch.workflow === wf.path && wf.on.dispatch ? 'workflow_dispatch' : undefined;
  if (t.event === 'pull_request') {
    const f = wf.on.pullRequest;
    return f && refFilterMatches(f, t.baseRef ?? t.ref, true) && pathFilterMatches(f, t.changedFiles)
      ? 'pull_request'
      : undefined;
  }
  // A push, a tag, or `solstice enqueue` of a branch: run what a push of that ref runs.
  const f = wf.on.push;
  return f && refFilterMatches(f, t.ref, false) && pathFilterMatches(f, t.changedFiles) ? 'push' : undefined;
}

function githubContext(wf: ActionsWorkflow, t: ActionsTrigger, eventName: string): Record<string, unknown> {
  const ref = t.ref ?? '';
  const refName = ref.replace(/^refs\/(heads|tags)\//, '');
  const repository = (t.repoUrl ?? '')
    .replace(/\.git$/, '')
    .split(/[/:]/)
    .slice(-2)
    .join('/');
  return {
    event_name: eventName,
    ref,
    ref_name: refName,
    ref_type: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
    sha: t.sha,
    repository,
    repository_owner: repository.split('/')[0] ?? '',
    workflow: wf.name ?? wf.path,
    workflow_ref: `${repository}/${wf.path}@${ref}`,
    head_ref: t.event === 'pull_request' ? refName : '',
    base_ref: t.event === 'pull_request' ? (t.baseRef ?? '').replace(/^refs\/heads\//, '') : '',
    run_id: '',
    run_number: '',
    run_attempt: '1',
    actor: '',
    server_url: '',
    event: t.dispatch ? { inputs: t.dispatch.inputs } : {},
  };
}

/** The first Solstice label whose machines provide every runs-on label (or that is named itself). */
export function labelFor(runsOn: string[], map: Record<string, string[]>): string | undefined {
  if (runsOn.length === 1 && Object.hasOwn(map, runsOn[0])) return runsOn[0];
  for (const [label, provides] of Object.entries(map)) {
    if (runsOn.every((l) => l === label || provides.includes(l))) return label;
  }
  return undefined;
}

function secretNames(texts: string[]): string[] {
  const names = new Set<string>();
  for (const t of texts)
    for (const s of expressionSpans(t))
      for (const m of s.expr.matchAll(/\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[1]);
  return [...names];
}

function matrixLabel(combo: Record<string, unknown>): string {
  return Object.values(combo)
    .map((v) => (typeof v === 'object' && v !== null ? Object.values(v).map(String).join(', ') : String(v)))
    .join(', ');
}

/** The pipeline for a trigger, from every Actions workflow file of the commit. */
export async function planActions(
  files: { path: string; text: string }[],
  trigger: ActionsTrigger,
  options: ActionsPlanOptions,
): Promise<ActionsPlan> {
  const plan: ActionsPlan = { workflows: [], jobs: [], cancelSuperseded: false, errors: [] };
  const inputsErrors: FileDiagnostics[] = [];
  for (const file of files) {
    const parsed = await parseActionsWorkflow(file.path, file.text);
    const fileErrors = parsed.diagnostics.filter((d) => d.severity === 'error');
    if (!parsed.workflow) {
      // Which events a broken file is for is not known: report it whenever it could have run.
      plan.errors.push({ path: file.path, diagnostics: fileErrors });
      continue;
    }
    const wf = parsed.workflow;
    const eventName = options.anyEvent
      ? wf.on.push
        ? 'push'
        : wf.on.pullRequest
          ? 'pull_request'
          : 'workflow_dispatch'
      : workflowEvent(wf, trigger);
    if (!eventName) continue;
    if (fileErrors.length > 0) plan.errors.push({ path: file.path, diagnostics: fileErrors });
    if (fileErrors.length > 0 && !options.evenWithErrors) continue;
    const inputs: Record<string, string> = {};
    if (trigger.dispatch && wf.on.dispatch) {
      for (const [name, def] of Object.entries(wf.on.dispatch.inputs)) {
        const given = trigger.dispatch.inputs[name];
        if (given === undefined && def.required && def.default === undefined) {
          inputsErrors.push({
            path: file.path,
            diagnostics: [located(`input "${name}" is required: give it with --input ${name}=<value>`)],
          });
        }
        inputs[name] = given ?? def.default ?? '';
      }
      for (const name of Object.keys(trigger.dispatch.inputs))
        if (!Object.hasOwn(wf.on.dispatch.inputs, name))
          inputsErrors.push({
            path: file.path,
            diagnostics: [
              located(
                `workflow_dispatch has no input "${name}"; it has ${Object.keys(wf.on.dispatch.inputs).join(', ') || 'none'}`,
              ),
            ],
          });
    }
    plan.workflows.push(wf.path);
    const github = githubContext(wf, trigger, eventName);
    // As on GitHub, only `cancel-in-progress: true` stops the older runs; without it they go on.
    if (wf.concurrency?.cancelInProgress) plan.cancelSuperseded = true;
    const errors: Diagnostic[] = [];
    const jobs = planWorkflow(wf, { github, inputs, vars: {} }, options, errors);
    if (errors.length > 0) plan.errors.push({ path: wf.path, diagnostics: errors });
    if (errors.length === 0 || options.evenWithErrors) plan.jobs.push(...jobs);
  }
  plan.errors.push(...inputsErrors);
  return plan;
}

function located(message: string, line = 1, column = 1): Diagnostic {
  return { severity: 'error', code: 'input', message, line, column, endLine: line, endColumn: column };
}

/** What the runner needs to evaluate a job's expressions (model/job-file.ts `actions`). */
export interface ActionsJobContext {
  contexts: Record<string, unknown>;
  /** Workflow env then job env: raw, evaluated by the runner (they may name secrets). */
  env: [string, string][];
  defaults: { shell?: string; workingDirectory?: string };
  /** Step id → expression text of each job output, evaluated after the steps. */
  outputs: Record<string, string>;
  /** Planned name of each needed job (instance) → its job id, where its outputs go in `needs`. */
  needs: Record<string, string>;
}

function planWorkflow(
  wf: ActionsWorkflow,
  base: { github: Record<string, unknown>; inputs: Record<string, string>; vars: Record<string, string> },
  options: ActionsPlanOptions,
  errors: Diagnostic[],
): PlannedJob[] {
  const stem = workflowStem(wf.path);
  const instances = new Map<string, string[]>();
  const out: PlannedJob[] = [];
  const ok = { success: true, cancelled: false };
  for (const job of wf.jobs) {
    const combos = job.strategy?.combinations.length ? job.strategy.combinations : [undefined];
    const names: string[] = [];
    const cond = job.if;
    if (cond && (usesStatusFunction(cond) || /\bneeds\./.test(cond)))
      errors.push(
        located(
          `job "${job.id}": an if that uses ${usesStatusFunction(cond) ? 'a status function' : 'needs'} is not supported yet (jobs run only when every job they need succeeded)`,
          job.line,
        ),
      );
    // The same for every matrix instance: scanned once per job, not once per instance.
    const secrets = secretNames([
      ...Object.values(wf.env),
      ...Object.values(job.env),
      ...job.steps.flatMap((s) => [s.run, s.if ?? '', ...Object.values(s.env)]),
      ...Object.values(job.outputs),
    ]);
    for (const combo of combos) {
      const contexts = {
        ...base,
        matrix: combo ?? {},
        strategy: {
          'fail-fast': job.strategy?.failFast ?? true,
          'job-index': names.length,
          'job-total': combos.length,
          'max-parallel': job.strategy?.maxParallel ?? combos.length,
        },
        needs: Object.fromEntries(job.needs.map((n) => [n, { result: 'success', outputs: {} }])),
      };
      let runsOn: string[];
      let matches = true;
      try {
        runsOn = job.runsOn.flatMap((l) => {
          const v = evaluateValue(l, contexts, ok);
          return Array.isArray(v) ? v.map(String) : [String(v)];
        });
        if (cond && !usesStatusFunction(cond) && !/\bneeds\./.test(cond))
          matches = evaluateCondition(cond, contexts, ok);
      } catch (err) {
        if (!(err instanceof ExpressionFailure)) throw err;
        errors.push(located(`job "${job.id}": ${err.message}`, job.line));
        continue;
      }
      const name = `${stem}/${job.id}${combo ? ` (${matrixLabel(combo)})` : ''}`;
      names.push(name);
      const label = labelFor(runsOn, options.runsOn);
      const steps: JobStep[] = job.steps.map((s) => ({
        name: s.name ?? (s.run.split('\n')[0].slice(0, 60) || `step ${s.index}`),
        run: s.run,
        ...(s.workingDirectory ? { workingDirectory: s.workingDirectory } : {}),
        continueOnError: s.continueOnError === true,
        actions: {
          ...(s.id ? { id: s.id } : {}),
          ...(s.if ? { if: s.if } : {}),
          ...(typeof s.continueOnError === 'string' ? { continueOnError: s.continueOnError } : {}),
          shell: s.shell ?? job.defaults.shell ?? wf.defaults.shell ?? (s.uses ? 'sh' : 'bash'),
          env: Object.entries(s.env),
          ...(s.timeoutMinutes ? { timeoutMs: s.timeoutMinutes * 60_000 } : {}),
          ...(s.uses ? { builtIn: true } : {}),
        },
      }));
      const actions: ActionsJobContext = {
        contexts: {
          ...contexts,
          job: { status: 'success' },
          runner: { os: 'Linux', arch: 'X64', name: label ?? '', temp: '', tool_cache: '' },
        },
        env: [...Object.entries(wf.env), ...Object.entries(job.env)],
        defaults: {
          ...((job.defaults.shell ?? wf.defaults.shell)
            ? { shell: job.defaults.shell ?? wf.defaults.shell }
            : {}),
          ...((job.defaults.workingDirectory ?? wf.defaults.workingDirectory)
            ? { workingDirectory: job.defaults.workingDirectory ?? wf.defaults.workingDirectory }
            : {}),
        },
        outputs: job.outputs,
        needs: Object.fromEntries(
          job.needs.flatMap((n) => (instances.get(n) ?? []).map((name) => [name, n])),
        ),
      };
      let displayName: string | undefined;
      try {
        displayName = job.name ? interpolate(job.name, contexts, ok) : undefined;
      } catch {
        displayName = undefined;
      }
      out.push({
        name,
        needs: job.needs.flatMap((n) => instances.get(n) ?? []),
        runsOn: label ?? runsOn.join(','),
        env: {},
        steps,
        ...(secrets.length > 0 ? { secrets } : {}),
        ...(job.timeoutMinutes ? { timeoutMs: job.timeoutMinutes * 60_000 } : {}),
        ...(job.artifacts.length > 0 ? { artifacts: job.artifacts } : {}),
        ...(job.continueOnError ? { continueOnError: true } : {}),
        ...(job.strategy
          ? {
              matrix: {
                group: `${stem}/${job.id}`,
                failFast: job.strategy.failFast,
                ...(job.strategy.maxParallel !== undefined ? { maxParallel: job.strategy.maxParallel } : {}),
              },
            }
          : {}),
        actions: JSON.stringify({ ...actions, ...(displayName ? { displayName } : {}) }),
        ...(label === undefined
          ? {
              skipReason: `no machine label provides runs-on ${runsOn.join(', ')} (see SOLSTICE_ACTIONS_RUNS_ON)`,
            }
          : !matches
            ? { skipReason: `its if (${cond}) is false for this ${String(base.github.event_name)}` }
            : {}),
      });
    }
    instances.set(job.id, names);
  }
  return out;
}
