/**
 * Reads one Actions workflow file: GitHub's schema through @actions/workflow-parser (located
 * errors, the `needs` graph, `if` normalised by its converter), then the keys the converter drops
 * (`shell`, `working-directory`, `timeout-minutes`, `defaults`, `with`) from the raw parse tree,
 * and the subset check: what Solstice does not run yet is a located error that says so.
 */
import {
  convertWorkflowTemplate,
  isBasicExpression,
  isBoolean,
  isMapping,
  isNumber,
  isSequence,
  isString,
  NoOperationTraceWriter,
  parseWorkflow,
  type MappingToken,
  type TemplateContext,
  type TemplateToken,
} from '../../generated/actions/parser';
import { expressionSpans } from '../../model/actions-expressions';
import type { Diagnostic } from '../model';
import { expandMatrix, MatrixError } from './matrix';
import type {
  ActionsJob,
  ActionsStep,
  ActionsTriggers,
  ActionsWorkflow,
  Concurrency,
  EventFilter,
  RunDefaults,
} from './model';
import { builtInStep, UnsupportedAction } from './built-ins';

export interface ActionsParseResult {
  /**
   * Set unless the file is not a valid workflow at all. With errors about what Solstice does not
   * run (code `unsupported`, `unsupported-action`, ...) it is what the file would run, for
   * `solstice workflow show`; it must not be run.
   */
  workflow?: ActionsWorkflow;
  diagnostics: Diagnostic[];
}

/** Largest workflow file read; bigger ones are refused before parsing. */
export const MAX_ACTIONS_FILE_BYTES = 1024 * 1024;

const SHELLS = ['bash', 'sh'];

/** Keys GitHub's schema accepts that Solstice (like Forgejo) does not run: refused, with why. */
const UNSUPPORTED_JOB_KEYS: Record<string, string> = {
  container: 'jobs run on the machine the runs-on label names; there are no job containers yet',
  services: 'service containers are not supported yet; start the service in a run: step',
  snapshot: 'a GitHub-only key (runner snapshots); Forgejo does not run it either',
  'cancel-timeout-minutes': 'a GitHub-only key; Forgejo does not run it either',
  environment: 'deployment environments (and their protection rules) are not supported yet',
};
const UNSUPPORTED_STEP_KEYS: Record<string, string> = {
  wait: 'a GitHub-only step type; Forgejo does not run it either',
  'wait-all': 'a GitHub-only step type; Forgejo does not run it either',
  cancel: 'a GitHub-only step type; Forgejo does not run it either',
  parallel: 'a GitHub-only step type; Forgejo does not run it either',
  background: 'a GitHub-only step key; Forgejo does not run it either',
};

type Where = Pick<Diagnostic, 'line' | 'column' | 'endLine' | 'endColumn'>;

function where(tok: TemplateToken | undefined): Where {
  const r = tok?.range;
  return r
    ? { line: r.start.line, column: r.start.column, endLine: r.end.line, endColumn: r.end.column }
    : { line: 1, column: 1, endLine: 1, endColumn: 1 };
}

/** A scalar's text as written: expressions keep their `${{ }}`. */
function text(tok: TemplateToken): string {
  if (isBasicExpression(tok)) return tok.source ?? `\${{ ${tok.expression} }}`;
  if (isString(tok)) return tok.value;
  if (isNumber(tok) || isBoolean(tok)) return String(tok.value);
  return '';
}

/** A token as plain JSON (expressions as their `${{ }}` text). */
function plain(tok: TemplateToken): unknown {
  if (isMapping(tok)) {
    const out: Record<string, unknown> = {};
    for (const kv of tok)
      Object.defineProperty(out, text(kv.key), { value: plain(kv.value), enumerable: true });
    return out;
  }
  if (isSequence(tok)) return [...tok].map(plain);
  if (isNumber(tok) || isBoolean(tok)) return tok.value;
  if (isString(tok) || isBasicExpression(tok)) return text(tok);
  return null;
}

function entries(tok: TemplateToken | undefined): [string, TemplateToken, TemplateToken][] {
  if (!tok || !isMapping(tok)) return [];
  return [...tok].map((kv) => [text(kv.key), kv.value, kv.key]);
}

function get(map: MappingToken, key: string): TemplateToken | undefined {
  return map.find(key);
}

function stringMap(tok: TemplateToken | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of entries(tok)) Object.defineProperty(out, k, { value: text(v), enumerable: true });
  return out;
}

function stringList(tok: TemplateToken | undefined): string[] | undefined {
  if (!tok) return undefined;
  if (isSequence(tok)) return [...tok].map(text);
  return [text(tok)];
}

export async function parseActionsWorkflow(path: string, content: string): Promise<ActionsParseResult> {
  const diagnostics: Diagnostic[] = [];
  const error = (tok: TemplateToken | undefined, code: string, message: string, hint?: string): void => {
    diagnostics.push({ severity: 'error', code, message, ...where(tok), ...(hint ? { hint } : {}) });
  };
  if (Buffer.byteLength(content) > MAX_ACTIONS_FILE_BYTES) {
    error(undefined, 'too-large', `the file is larger than ${MAX_ACTIONS_FILE_BYTES / 1024} KiB`);
    return { diagnostics };
  }

  let parsed;
  try {
    parsed = parseWorkflow({ name: path, content }, new NoOperationTraceWriter());
  } catch (err) {
    // The library should report, not throw; a crash of its own is still the file's located error.
    error(undefined, 'syntax', `cannot parse: ${(err as Error).message}`);
    return { diagnostics };
  }
  const libraryErrors = (ctx: TemplateContext): void => {
    for (const e of ctx.errors.getErrors()) {
      const r = e.range;
      diagnostics.push({
        severity: 'error',
        code: 'schema',
        message: e.rawMessage,
        line: r?.start.line ?? 1,
        column: r?.start.column ?? 1,
        endLine: r?.end.line ?? r?.start.line ?? 1,
        endColumn: r?.end.column ?? r?.start.column ?? 1,
      });
    }
    ctx.errors.clear();
  };
  libraryErrors(parsed.context);
  const root = parsed.value;
  if (diagnostics.length > 0 || !root || !isMapping(root)) {
    if (diagnostics.length === 0)
      error(root, 'schema', 'the file is not a workflow (a YAML mapping with on: and jobs:)');
    return { diagnostics: sortByPlace(diagnostics) };
  }

  let template;
  try {
    template = await convertWorkflowTemplate(parsed.context, root);
  } catch (err) {
    error(undefined, 'schema', `cannot read the workflow: ${(err as Error).message}`);
    return { diagnostics };
  }
  libraryErrors(parsed.context);
  for (const e of template.errors ?? [])
    if (!diagnostics.some((d) => d.message === e.Message)) error(undefined, 'schema', e.Message);
  if (diagnostics.length > 0) return { diagnostics: sortByPlace(diagnostics) };

  const on = readTriggers(get(root, 'on'), error);
  const defaults = readDefaults(get(root, 'defaults'));
  const concurrency = readConcurrency(get(root, 'concurrency'), error);
  const converted = new Map(template.jobs.map((j) => [j.id.value, j]));
  const jobs: ActionsJob[] = [];
  for (const [id, jobTok, keyTok] of entries(get(root, 'jobs'))) {
    if (!isMapping(jobTok)) continue;
    if (get(jobTok, 'uses')) {
      error(
        get(jobTok, 'uses'),
        'unsupported',
        `job "${id}" calls a reusable workflow, which is not supported yet`,
        "put the called workflow's jobs into this file",
      );
      continue;
    }
    for (const [key, tok] of entries(jobTok)) {
      const why = UNSUPPORTED_JOB_KEYS[key];
      if (why) error(tok, 'unsupported', `job "${id}": ${key} is not supported: ${why}`);
    }
    const conv = converted.get(id);
    const job = readJob(id, jobTok, keyTok, error);
    if (conv && conv.type === 'job') {
      job.needs = (conv.needs ?? []).map((n) => n.value);
      // The converter normalised `if` (an empty one is success()); keep what the file says.
    }
    jobs.push(job);
  }

  const name = get(root, 'name');
  return {
    workflow: {
      path,
      ...(name ? { name: text(name) } : {}),
      on,
      env: stringMap(get(root, 'env')),
      defaults,
      ...(concurrency ? { concurrency } : {}),
      jobs,
    },
    diagnostics: sortByPlace(diagnostics),
  };
}

function sortByPlace(d: Diagnostic[]): Diagnostic[] {
  return [...d].sort((a, b) => a.line - b.line || a.column - b.column);
}

type ErrorFn = (tok: TemplateToken | undefined, code: string, message: string, hint?: string) => void;

function readFilter(tok: TemplateToken | undefined): EventFilter {
  const f: EventFilter = {};
  for (const [k, v] of entries(tok)) {
    const list = stringList(v);
    if (!list) continue;
    if (k === 'branches') f.branches = list;
    else if (k === 'branches-ignore') f.branchesIgnore = list;
    else if (k === 'tags') f.tags = list;
    else if (k === 'tags-ignore') f.tagsIgnore = list;
    else if (k === 'paths') f.paths = list;
    else if (k === 'paths-ignore') f.pathsIgnore = list;
  }
  return f;
}

function readTriggers(tok: TemplateToken | undefined, error: ErrorFn): ActionsTriggers {
  const on: ActionsTriggers = {};
  const events: [string, TemplateToken | undefined][] = [];
  if (tok && (isString(tok) || isSequence(tok)))
    for (const e of stringList(tok) ?? []) events.push([e, undefined]);
  else for (const [k, v] of entries(tok)) events.push([k, v]);
  for (const [event, v] of events) {
    if (event === 'push') on.push = readFilter(v);
    else if (event === 'pull_request') {
      on.pullRequest = readFilter(v);
      const types = v && isMapping(v) ? get(v, 'types') : undefined;
      if (types)
        error(
          types,
          'unsupported',
          'pull_request types are not supported yet: the workflow runs for every pull request event Solstice gets (opened, synchronized, reopened)',
        );
    } else if (event === 'workflow_dispatch') {
      const inputs: Record<
        string,
        { default?: string; required: boolean; type?: string; options?: string[] }
      > = {};
      const inputsTok = v && isMapping(v) ? get(v, 'inputs') : undefined;
      for (const [name, def] of entries(inputsTok)) {
        const d = isMapping(def) ? def : undefined;
        const dflt = d && get(d, 'default');
        const req = d && get(d, 'required');
        const type = d && get(d, 'type');
        Object.defineProperty(inputs, name, {
          enumerable: true,
          value: {
            ...(dflt ? { default: text(dflt) } : {}),
            required: req ? text(req) === 'true' : false,
            ...(type ? { type: text(type) } : {}),
            ...(d && get(d, 'options') ? { options: stringList(get(d, 'options')) } : {}),
          },
        });
      }
      on.dispatch = { inputs };
    }
    // Other events (schedule, workflow_call, issues, ...) never reach Solstice: the workflow
    // simply does not run for them (docs/actions.md).
  }
  return on;
}

function readDefaults(tok: TemplateToken | undefined): RunDefaults {
  const run = tok && isMapping(tok) ? get(tok, 'run') : undefined;
  if (!run || !isMapping(run)) return {};
  const shell = get(run, 'shell');
  const wd = get(run, 'working-directory');
  return { ...(shell ? { shell: text(shell) } : {}), ...(wd ? { workingDirectory: text(wd) } : {}) };
}

function readConcurrency(tok: TemplateToken | undefined, error: ErrorFn): Concurrency | undefined {
  if (!tok) return undefined;
  if (!isMapping(tok)) return { group: text(tok), cancelInProgress: false };
  const queue = get(tok, 'queue');
  if (queue)
    error(queue, 'unsupported', 'concurrency.queue is a GitHub-only key; Forgejo does not run it either');
  const group = get(tok, 'group');
  const cancel = get(tok, 'cancel-in-progress');
  if (cancel && isBasicExpression(cancel))
    error(
      cancel,
      'unsupported',
      'cancel-in-progress must be true or false here; an expression is not supported yet',
    );
  return { group: group ? text(group) : '', cancelInProgress: cancel ? text(cancel) === 'true' : false };
}

function minutes(tok: TemplateToken | undefined, what: string, error: ErrorFn): number | undefined {
  if (!tok) return undefined;
  if (isNumber(tok) && tok.value > 0) return tok.value;
  error(
    tok,
    'unsupported',
    `${what} must be a positive number of minutes; an expression is not supported yet`,
  );
  return undefined;
}

function readJob(id: string, job: MappingToken, keyTok: TemplateToken, error: ErrorFn): ActionsJob {
  const runsOnTok = get(job, 'runs-on');
  let runsOn: string[] = [];
  if (!runsOnTok) error(keyTok, 'schema', `job "${id}" has no runs-on`);
  else if (isMapping(runsOnTok)) {
    const labels = get(runsOnTok, 'labels');
    if (get(runsOnTok, 'group'))
      error(runsOnTok, 'unsupported', 'runs-on.group (runner groups) is not supported; name labels');
    runsOn = stringList(labels) ?? [];
  } else runsOn = stringList(runsOnTok) ?? [];

  const coe = get(job, 'continue-on-error');
  if (coe && !isBoolean(coe))
    error(
      coe,
      'unsupported',
      "a job's continue-on-error must be true or false; an expression is not supported yet",
    );

  let strategy: ActionsJob['strategy'];
  const strategyTok = get(job, 'strategy');
  if (strategyTok && isMapping(strategyTok)) {
    const matrixTok = get(strategyTok, 'matrix');
    const ff = get(strategyTok, 'fail-fast');
    const mp = get(strategyTok, 'max-parallel');
    if (ff && !isBoolean(ff))
      error(ff, 'unsupported', 'fail-fast must be true or false; an expression is not supported yet');
    if (mp && !isNumber(mp))
      error(mp, 'unsupported', 'max-parallel must be a number; an expression is not supported yet');
    let combinations: Record<string, unknown>[] = [{}];
    if (matrixTok) {
      if (isBasicExpression(matrixTok)) {
        error(
          matrixTok,
          'unsupported',
          'a matrix computed by an expression (e.g. fromJSON(needs...)) is not supported yet',
          'list the matrix values in the file',
        );
      } else {
        try {
          combinations = expandMatrix(plain(matrixTok));
        } catch (err) {
          if (!(err instanceof MatrixError)) throw err;
          error(matrixTok, 'matrix', err.message);
        }
      }
    }
    strategy = {
      combinations,
      failFast: ff && isBoolean(ff) ? ff.value : true,
      ...(mp && isNumber(mp) ? { maxParallel: mp.value } : {}),
    };
  }

  const defaults = readDefaults(get(job, 'defaults'));
  const steps: ActionsStep[] = [];
  const artifacts: string[] = [];
  const stepsTok = get(job, 'steps');
  if (!stepsTok || !isSequence(stepsTok) || stepsTok.count === 0)
    error(keyTok, 'schema', `job "${id}" has no steps`);
  else {
    for (const [i, stepTok] of [...stepsTok].entries()) {
      if (!isMapping(stepTok)) continue;
      const step = readStep(i + 1, stepTok, error);
      if (!step) continue;
      if (step.artifacts) artifacts.push(...step.artifacts);
      else steps.push(step.step);
    }
  }
  const name = get(job, 'name');
  const ifTok = get(job, 'if');
  return {
    id,
    ...(name ? { name: text(name) } : {}),
    needs: [],
    ...(ifTok ? { if: text(ifTok) } : {}),
    runsOn,
    ...(get(job, 'timeout-minutes')
      ? { timeoutMinutes: minutes(get(job, 'timeout-minutes'), `job "${id}": timeout-minutes`, error) }
      : {}),
    continueOnError: coe !== undefined && isBoolean(coe) && coe.value,
    env: stringMap(get(job, 'env')),
    defaults,
    outputs: stringMap(get(job, 'outputs')),
    ...(strategy ? { strategy } : {}),
    ...(get(job, 'concurrency') ? { concurrency: readConcurrency(get(job, 'concurrency'), error) } : {}),
    steps,
    artifacts,
    line: keyTok.range?.start.line ?? 1,
  };
}

function readStep(
  index: number,
  s: MappingToken,
  error: ErrorFn,
): { step: ActionsStep; artifacts?: undefined } | { artifacts: string[]; step?: undefined } | undefined {
  for (const [key, tok] of entries(s)) {
    const why = UNSUPPORTED_STEP_KEYS[key];
    if (why) {
      error(tok, 'unsupported', `step ${index}: ${key} is not supported: ${why}`);
      return undefined;
    }
  }
  const shellTok = get(s, 'shell');
  const shell = shellTok ? text(shellTok) : undefined;
  if (shellTok && (!shell || !SHELLS.includes(shell)))
    error(shellTok, 'unsupported', `step ${index}: shell "${shell}" is not supported; use bash or sh`);
  const coe = get(s, 'continue-on-error');
  const tm = get(s, 'timeout-minutes');
  const wd = get(s, 'working-directory');
  const common = {
    index,
    ...(get(s, 'id') ? { id: text(get(s, 'id') as TemplateToken) } : {}),
    ...(get(s, 'name') ? { name: text(get(s, 'name') as TemplateToken) } : {}),
    ...(get(s, 'if') ? { if: text(get(s, 'if') as TemplateToken) } : {}),
    ...(shell && SHELLS.includes(shell) ? { shell } : {}),
    ...(wd ? { workingDirectory: text(wd) } : {}),
    env: stringMap(get(s, 'env')),
    continueOnError: coe ? (isBoolean(coe) ? coe.value : text(coe)) : false,
    ...(tm ? { timeoutMinutes: minutes(tm, `step ${index}: timeout-minutes`, error) } : {}),
    line: s.range?.start.line ?? 1,
  };
  const run = get(s, 'run');
  if (run) return { step: { ...common, run: text(run) } };
  const uses = get(s, 'uses');
  if (!uses) return undefined; // the schema reported it
  const usesText = text(uses);
  try {
    const built = builtInStep(usesText, stringMap(get(s, 'with')));
    if (built.kind === 'artifacts') {
      if (expressionSpans(built.paths.join('\n')).length > 0)
        error(
          get(s, 'with'),
          'unsupported',
          `step ${index}: upload-artifact paths must be written out; an expression is not supported yet`,
        );
      return { artifacts: built.paths };
    }
    return { step: { ...common, name: common.name ?? built.name, run: built.run, uses: usesText } };
  } catch (err) {
    if (!(err instanceof UnsupportedAction)) throw err;
    error(uses, 'unsupported-action', err.message, err.hint);
    return undefined;
  }
}
