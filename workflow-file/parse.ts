/**
 * Workflow file text → typed WorkflowFile plus diagnostics. Never throws for bad input: every
 * problem is a Diagnostic with a line and column. The language is in docs/workflow-file.md.
 */
import type { Document, Entry, Node } from '@bgotink/kdl';
import { Diagnostics, entrySpan, FILE_START, nodeSpan, spanOf, type Span } from './diagnostics';
import { parseWorkflowDuration } from './duration';
import {
  DEFAULT_RUNS_ON,
  WORKFLOW_EVENTS,
  type Job,
  type MatrixAxis,
  type ParseOptions,
  type ParseResult,
  type Step,
  type WorkflowEvent,
  type WorkflowFile,
} from './model';
import { didYouMean } from './suggest';
import { parseKdl } from './syntax';
import { checkDocumentLimits, checkTextLimits, WORKFLOW_FILE_LIMITS } from './limits';
import { validateWorkflow, type JobSource, type WorkflowSource } from './validate';

const TOP_NODES = ['name', 'env', 'job', 'cancel-superseded'];
const JOB_NODES = ['runs-on', 'needs', 'timeout', 'env', 'secrets', 'step', 'artifacts', 'when', 'matrix'];
const WHEN_NODES = ['events', 'branches'];
const STEP_PROPERTIES = ['run', 'working-directory', 'continue-on-error'];

/** Common other spellings (normalised: lower case, `_` as `-`) and what they are here. */
const ALIASES: Record<string, string> = {
  runson: 'runs-on',
  image: 'runs-on',
  label: 'runs-on',
  'depends-on': 'needs',
  dependencies: 'needs',
  requires: 'needs',
  after: 'needs',
  'timeout-minutes': 'timeout',
  environment: 'env',
  variables: 'env',
  steps: 'step',
  artifact: 'artifacts',
  paths: 'artifacts',
  on: 'when',
  if: 'when',
  event: 'events',
  branch: 'branches',
  script: 'run',
  command: 'run',
  cmd: 'run',
  sh: 'run',
  workdir: 'working-directory',
  'working-dir': 'working-directory',
  cwd: 'working-directory',
  dir: 'working-directory',
  'allow-failure': 'continue-on-error',
  'ignore-errors': 'continue-on-error',
  jobs: 'job',
};

/** Where a name that is misplaced belongs. */
const BELONGS: Record<string, string> = {
  ...Object.fromEntries(
    JOB_NODES.map((n) => [n, `"${n}" belongs inside a job block: job "id" { ${n} ... }`]),
  ),
  ...Object.fromEntries(WHEN_NODES.map((n) => [n, `"${n}" belongs inside a when block: when { ${n} ... }`])),
  ...Object.fromEntries(
    STEP_PROPERTIES.map((n) => [n, `"${n}" is a property of step: step "name" ${n}=...`]),
  ),
  job: '"job" belongs at the top level of the file',
  name: '"name" belongs at the top level of the file',
};
BELONGS.env = '"env" goes at the top level or inside a job block';

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const AXIS_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function parseWorkflowFile(text: string, options: ParseOptions = {}): ParseResult {
  const out = new Diagnostics(text, WORKFLOW_FILE_LIMITS.diagnostics);
  if (!checkTextLimits(text, out)) return { diagnostics: out.sorted(), ok: false };
  const doc = parseKdl(text, out);
  if (doc && checkDocumentLimits(doc, out)) {
    const source = new Walker(out).workflow(doc);
    if (!out.full) validateWorkflow(source, out, options.knownLabels ?? [DEFAULT_RUNS_ON]);
    if (!out.hasErrors) return { workflow: source.workflow, diagnostics: out.sorted(), ok: true };
  }
  return { diagnostics: out.sorted(), ok: false };
}

function describeValue(entry: Entry): string {
  const v = entry.value.value;
  if (typeof v === 'number') return `the number ${entry.value.representation ?? v}`;
  if (typeof v === 'boolean') return `#${v}`;
  if (v === null) return '#null';
  return `the string "${v}"`;
}

class Walker {
  constructor(private readonly out: Diagnostics) {}

  workflow(doc: Document): WorkflowSource {
    const workflow: WorkflowFile = { jobs: [] };
    const jobs: JobSource[] = [];
    const env = new EnvScope();
    const seen = new Map<string, Span>();
    for (const node of doc.nodes) {
      if (this.out.full) break;
      const name = this.checkName(node, TOP_NODES, 'at the top level');
      if (name === 'name') {
        if (!this.once(node, seen)) continue;
        this.noProperties(node, 'name', []);
        this.noChildren(node, 'name');
        const [title] = this.strings(node, 'name', 1, 1, 'name "CI"', 'a name');
        if (title) workflow.name = title.value;
      } else if (name === 'env') {
        this.env(node, env);
      } else if (name === 'job') {
        const job = this.job(node);
        if (job) jobs.push(job);
      } else if (name === 'cancel-superseded') {
        if (!this.once(node, seen)) continue;
        this.noProperties(node, 'cancel-superseded', []);
        this.noChildren(node, 'cancel-superseded');
        const args = node.entries.filter((e) => e.isArgument());
        const [arg, ...extra] = args;
        for (const e of extra)
          this.out.error('extra-argument', '"cancel-superseded" takes one argument', spanOf(e.value), {
            hint: 'write cancel-superseded #false',
          });
        if (!arg) {
          this.out.error('missing-argument', '"cancel-superseded" needs #true or #false', nodeSpan(node), {
            hint: 'write cancel-superseded #false',
          });
        } else if (typeof arg.value.value !== 'boolean') {
          this.out.error(
            'bad-type',
            `cancel-superseded must be #true or #false, got ${describeValue(arg)}`,
            spanOf(arg.value),
            { hint: 'write cancel-superseded #false' },
          );
        } else {
          this.noValueTag(arg);
          workflow.cancelSuperseded = arg.value.value;
        }
      }
    }
    if (jobs.length === 0 && !this.out.hasErrors) {
      this.out.error(
        'no-jobs',
        'the workflow has no jobs',
        doc.nodes[0] ? nodeSpan(doc.nodes[0]) : FILE_START,
        {
          hint: 'add a job: job "build" { step "make" run="make" }',
        },
      );
    }
    for (const job of jobs) {
      job.job.env = { ...env.values, ...job.job.env };
      workflow.jobs.push(job.job);
    }
    return { workflow, jobs };
  }

  private job(node: Node): JobSource | undefined {
    this.noProperties(node, 'job', JOB_NODES);
    const [idArg] = this.strings(node, 'job', 1, 1, 'job "build" { ... }', 'an id');
    const idSpan = idArg ? entrySpan(idArg.entry) : nodeSpan(node);
    const id = idArg?.value ?? '';
    if (idArg && !JOB_ID.test(id)) {
      this.out.error('bad-job-id', `job id "${id}" is not valid`, idSpan, {
        hint: 'use letters, digits, ".", "_" and "-", starting with a letter or digit',
      });
    } else if (id.length > 64) {
      this.out.error('bad-job-id', `job id "${id.slice(0, 20)}..." is longer than 64 characters`, idSpan);
    }
    const job: Job = { id, runsOn: DEFAULT_RUNS_ON, needs: [], env: {}, steps: [], artifacts: [], when: {} };
    const source: JobSource = { job, node, idSpan, needs: [], stepNames: new Map() };
    const env = new EnvScope();
    const seen = new Map<string, Span>();
    for (const child of node.children?.nodes ?? []) {
      const name = this.checkName(child, JOB_NODES, `in job "${id}"`);
      if (name === undefined) continue;
      if (['runs-on', 'timeout', 'when', 'matrix'].includes(name) && !this.once(child, seen)) continue;
      switch (name) {
        case 'runs-on': {
          this.noProperties(child, 'runs-on', []);
          this.noChildren(child, 'runs-on');
          const [label] = this.strings(child, 'runs-on', 1, 1, 'runs-on "local"', 'a label');
          if (label) {
            job.runsOn = label.value;
            source.runsOnSpan = spanOf(label.entry.value);
          }
          break;
        }
        case 'needs':
          this.noProperties(child, 'needs', []);
          this.noChildren(child, 'needs');
          for (const need of this.strings(
            child,
            'needs',
            1,
            Infinity,
            'needs "build" "lint"',
            'at least one job id',
          )) {
            source.needs.push({ id: need.value, span: spanOf(need.entry.value) });
            job.needs.push(need.value);
          }
          break;
        case 'timeout': {
          this.noProperties(child, 'timeout', []);
          this.noChildren(child, 'timeout');
          const [raw] = this.strings(child, 'timeout', 1, 1, 'timeout "30m"', 'a duration');
          if (raw) {
            const d = parseWorkflowDuration(raw.value);
            if (d.ok) job.timeoutMs = d.ms;
            else this.out.error('bad-duration', d.message, spanOf(raw.entry.value), { hint: d.hint });
          }
          break;
        }
        case 'env':
          this.env(child, env);
          break;
        case 'secrets':
          this.noProperties(child, 'secrets', []);
          this.noChildren(child, 'secrets');
          for (const s of this.strings(
            child,
            'secrets',
            1,
            Infinity,
            'secrets "DEPLOY_TOKEN"',
            'at least one name',
          )) {
            if (!ENV_NAME.test(s.value)) {
              this.out.error(
                'bad-secret',
                `"${s.value}" is not a valid environment variable name`,
                spanOf(s.entry.value),
                {
                  hint: 'a secret reaches the steps as the variable of its name: use letters, digits and "_"',
                },
              );
            } else if (!(job.secrets ??= []).includes(s.value)) {
              job.secrets.push(s.value);
            }
          }
          break;
        case 'step': {
          const step = this.step(child, source);
          if (step) job.steps.push(step);
          break;
        }
        case 'artifacts':
          this.noProperties(child, 'artifacts', []);
          this.noChildren(child, 'artifacts');
          for (const path of this.strings(
            child,
            'artifacts',
            1,
            Infinity,
            'artifacts "dist/**"',
            'at least one path',
          )) {
            if (this.relativePath(path.value, path.entry, 'artifact path')) job.artifacts.push(path.value);
          }
          break;
        case 'when':
          this.when(child, job);
          break;
        case 'matrix':
          this.matrix(child, source);
          break;
      }
    }
    job.env = env.values;
    if (!node.children) {
      this.out.error('no-steps', `job "${id}" has no steps`, nodeSpan(node), {
        hint: `give it a block of steps: job "${id || 'build'}" { step "build" run="make" }`,
      });
    } else if (!node.children.nodes.some((c) => c.getName() === 'step')) {
      this.out.error('no-steps', `job "${id}" has no steps`, nodeSpan(node), {
        hint: 'add a step: step "build" run="make"',
      });
    }
    return idArg ? source : undefined;
  }

  private step(node: Node, job: JobSource): Step | undefined {
    const [nameArg] = this.strings(node, 'step', 1, 1, 'step "test" run="make test"', 'a name');
    const props = this.properties(node, 'step', STEP_PROPERTIES);
    if (node.children) {
      this.out.error('unexpected-children', 'step takes no block', spanOf(node.children), {
        hint: 'give the script as a property: step "test" run="make test" (multi-line: run="""...""")',
      });
    }
    const run = props.get('run');
    let script: string | undefined;
    if (!run) {
      this.out.error(
        'missing-run',
        `step${nameArg ? ` "${nameArg.value}"` : ''} has no run script`,
        nodeSpan(node),
        {
          hint: 'add run="...": step "test" run="make test"',
        },
      );
    } else {
      script = this.stringValue(run, 'run', 'run="make test"');
      if (script !== undefined && script.trim() === '') {
        this.out.error('empty-run', 'run script is empty', spanOf(run.value));
        script = undefined;
      }
    }
    let workingDirectory: string | undefined;
    const wd = props.get('working-directory');
    if (wd) {
      const value = this.stringValue(wd, 'working-directory', 'working-directory="web"');
      if (value !== undefined && this.relativePath(value, wd, 'working-directory')) workingDirectory = value;
    }
    let continueOnError = false;
    const coe = props.get('continue-on-error');
    if (coe) {
      if (typeof coe.value.value === 'boolean') continueOnError = coe.value.value;
      else
        this.out.error(
          'bad-type',
          `continue-on-error must be #true or #false, got ${describeValue(coe)}`,
          spanOf(coe.value),
          {
            hint: 'write continue-on-error=#true',
          },
        );
    }
    if (!nameArg) return undefined;
    const name = nameArg.value;
    if (name.trim() === '') {
      this.out.error('bad-step-name', 'step name is empty', spanOf(nameArg.entry.value));
      return undefined;
    }
    const first = job.stepNames.get(name);
    if (first) {
      this.out.error(
        'duplicate-step',
        `duplicate step "${name}" in job "${job.job.id}" (first at ${first.start.line}:${first.start.column})`,
        spanOf(nameArg.entry.value),
        { hint: 'give every step of a job its own name' },
      );
      return undefined;
    }
    job.stepNames.set(name, spanOf(nameArg.entry.value));
    if (script === undefined) return undefined;
    const step: Step = { name, run: script, continueOnError };
    if (workingDirectory !== undefined) step.workingDirectory = workingDirectory;
    return step;
  }

  private when(node: Node, job: Job): void {
    this.strings(node, 'when', 0, 0, 'when { events "push" }');
    this.noProperties(node, 'when', WHEN_NODES);
    if (!node.children || node.children.nodes.length === 0) {
      this.out.error('empty-when', 'when has no conditions', nodeSpan(node), {
        hint: 'add conditions: when { events "push"; branches "main" }, or remove it',
      });
      return;
    }
    for (const child of node.children.nodes) {
      const name = this.checkName(child, WHEN_NODES, 'in when');
      if (name === undefined) continue;
      this.noProperties(child, name, []);
      this.noChildren(child, name);
      if (name === 'events') {
        for (const ev of this.strings(
          child,
          'events',
          1,
          Infinity,
          'events "push" "pull_request"',
          'at least one event',
        )) {
          if ((WORKFLOW_EVENTS as readonly string[]).includes(ev.value)) {
            (job.when.events ??= []).push(ev.value as WorkflowEvent);
          } else {
            this.out.error('unknown-event', `unknown event "${ev.value}"`, spanOf(ev.entry.value), {
              suggestion: didYouMean(ev.value, WORKFLOW_EVENTS, {
                pr: 'pull_request',
                'pull-request': 'pull_request',
              }),
              hint: `events are ${WORKFLOW_EVENTS.join(', ')}`,
            });
          }
        }
      } else {
        for (const br of this.strings(
          child,
          'branches',
          1,
          Infinity,
          'branches "main" "release/*"',
          'at least one branch pattern',
        )) {
          if (br.value.trim() === '' || /\s/.test(br.value)) {
            this.out.error(
              'bad-branch',
              `branch pattern "${br.value}" is empty or contains spaces`,
              spanOf(br.entry.value),
            );
          } else (job.when.branches ??= []).push(br.value);
        }
      }
    }
  }

  private matrix(node: Node, job: JobSource): void {
    this.strings(node, 'matrix', 0, 0, 'matrix { node "18" "20" }');
    this.noProperties(node, 'matrix', []);
    if (!node.children || node.children.nodes.length === 0) {
      this.out.error('empty-matrix', 'matrix has no axes', nodeSpan(node), {
        hint: 'add an axis per line: matrix { node "18" "20" }',
      });
      return;
    }
    const axes: MatrixAxis[] = [];
    const seen = new Map<string, Span>();
    for (const child of node.children.nodes) {
      const name = child.getName();
      this.noTag(child);
      if (!AXIS_NAME.test(name)) {
        this.out.error('bad-axis', `matrix axis name "${name}" is not valid`, nodeSpan(child), {
          hint: 'use letters, digits, "_" and "-", starting with a letter',
        });
        continue;
      }
      if (!this.once(child, seen, 'axis')) continue;
      this.noProperties(child, `axis "${name}"`, []);
      this.noChildren(child, `axis "${name}"`);
      const values: string[] = [];
      for (const entry of child.entries.filter((e) => e.isArgument())) {
        this.noValueTag(entry);
        const v = entry.value.value;
        const value =
          typeof v === 'string'
            ? v
            : typeof v === 'number'
              ? (entry.value.representation ?? String(v))
              : undefined;
        if (value === undefined) {
          this.out.error(
            'bad-type',
            `matrix values must be strings or numbers, got ${describeValue(entry)}`,
            spanOf(entry.value),
          );
        } else if (values.includes(value)) {
          this.out.error('duplicate-value', `axis "${name}" lists "${value}" twice`, spanOf(entry.value));
        } else values.push(value);
      }
      if (child.entries.filter((e) => e.isArgument()).length === 0) {
        this.out.error('empty-axis', `matrix axis "${name}" has no values`, nodeSpan(child), {
          hint: `list its values: ${name} "a" "b"`,
        });
      }
      if (values.length > 0) axes.push({ name, values });
    }
    if (axes.length > 0) job.job.matrix = { axes };
    job.matrixSpan = nodeSpan(node);
  }

  private env(node: Node, scope: EnvScope): void {
    this.noChildren(node, 'env');
    for (const entry of node.entries) {
      this.noValueTag(entry);
      if (entry.isArgument()) {
        this.out.error('bad-env', 'env takes NAME="value" properties, not arguments', spanOf(entry.value), {
          hint: 'write env NAME="value" OTHER="value"',
        });
        continue;
      }
      const name = entry.getName()!;
      const at = entrySpan(entry);
      if (!ENV_NAME.test(name)) {
        this.out.error('bad-env', `"${name}" is not a valid environment variable name`, at, {
          hint: 'use letters, digits and "_", not starting with a digit',
        });
        continue;
      }
      const first = scope.spans.get(name);
      if (first) {
        this.out.error(
          'duplicate-env',
          `${name} is already set at ${first.start.line}:${first.start.column}`,
          at,
          {
            hint: 'set each variable once per scope',
          },
        );
        continue;
      }
      scope.spans.set(name, at);
      const value = this.stringValue(entry, name, `${name}="..."`);
      // defineProperty: a variable may be called __proto__ without touching the prototype.
      if (value !== undefined) {
        Object.defineProperty(scope.values, name, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
    if (node.entries.length === 0) {
      this.out.error('empty-env', 'env sets no variables', nodeSpan(node), {
        hint: 'write env NAME="value"',
      });
    }
  }

  // ---- shared checks ----

  /** The node's name if it is allowed here; otherwise an error with a suggestion. */
  private checkName(node: Node, allowed: string[], where: string): string | undefined {
    this.noTag(node);
    const name = node.getName();
    if (allowed.includes(name)) return name;
    const suggestion = didYouMean(name, allowed, ALIASES);
    const misplaced = BELONGS[name];
    this.out.error('unknown-node', `unknown node "${name}" ${where}`, nodeSpan(node), {
      suggestion,
      hint: misplaced ?? (suggestion ? undefined : `expected one of: ${allowed.join(', ')}`),
    });
    return undefined;
  }

  /** False (and an error) if a node of this name was already seen in this block. */
  private once(node: Node, seen: Map<string, Span>, what = 'node'): boolean {
    const name = node.getName();
    const first = seen.get(name);
    if (first) {
      this.out.error(
        'duplicate-node',
        `duplicate ${what} "${name}" (first at ${first.start.line}:${first.start.column})`,
        nodeSpan(node),
        {
          hint: 'keep only one',
        },
      );
      return false;
    }
    seen.set(name, nodeSpan(node));
    return true;
  }

  private noTag(node: Node): void {
    if (node.tag) this.typeAnnotation(spanOf(node.tag));
  }

  private noValueTag(entry: Entry): void {
    if (entry.value.tag) this.typeAnnotation(spanOf(entry.value.tag));
  }

  private typeAnnotation(at: Span): void {
    this.out.error('type-annotation', 'type annotations are not used in workflow files', at, {
      hint: 'remove the (...) before the name or value',
    });
  }

  private noChildren(node: Node, what: string): void {
    if (node.children)
      this.out.error('unexpected-children', `${what} takes no block`, spanOf(node.children), {
        hint: 'remove the { ... }',
      });
  }

  /** Errors for every property of a node that takes none; `childNames` hint at child nodes. */
  private noProperties(node: Node, what: string, childNames: string[]): void {
    for (const entry of node.entries) {
      if (!entry.isProperty()) continue;
      const name = entry.getName()!;
      const child = childNames.includes(name) ? name : undefined;
      const suggestion = child ? undefined : didYouMean(name, childNames, ALIASES);
      const target = child ?? suggestion;
      this.out.error('unknown-property', `${what} takes no property "${name}"`, entrySpan(entry), {
        suggestion,
        hint: target
          ? `write it as a child node inside the block: ${what} ... { ${target} ... }`
          : `${what} takes no properties`,
      });
    }
  }

  /** The node's properties by name; unknown and repeated ones are errors. */
  private properties(node: Node, what: string, allowed: string[]): Map<string, Entry> {
    const props = new Map<string, Entry>();
    for (const entry of node.entries) {
      if (!entry.isProperty()) continue;
      this.noValueTag(entry);
      const name = entry.getName()!;
      if (!allowed.includes(name)) {
        const suggestion = didYouMean(name, allowed, ALIASES);
        this.out.error('unknown-property', `unknown property "${name}" on ${what}`, entrySpan(entry), {
          suggestion,
          hint: suggestion ? undefined : `${what} takes ${allowed.join(', ')}`,
        });
      } else if (props.has(name)) {
        const first = entrySpan(props.get(name)!);
        this.out.error(
          'duplicate-property',
          `duplicate property "${name}" (first at ${first.start.line}:${first.start.column})`,
          entrySpan(entry),
          { hint: 'keep only one' },
        );
      } else props.set(name, entry);
    }
    return props;
  }

  /** The node's arguments as strings, between min and max of them; anything else is an error. */
  private strings(
    node: Node,
    what: string,
    min: number,
    max: number,
    example: string,
    noun = 'an argument',
  ): { value: string; entry: Entry }[] {
    const out: { value: string; entry: Entry }[] = [];
    const args = node.entries.filter((e) => e.isArgument());
    args.forEach((entry, i) => {
      this.noValueTag(entry);
      if (i >= max) {
        this.out.error(
          'extra-argument',
          max === 0 ? `"${what}" takes no arguments` : `"${what}" takes one argument`,
          spanOf(entry.value),
          { hint: `write ${example}` },
        );
        return;
      }
      const value = this.stringValue(entry, what, example);
      if (value !== undefined) out.push({ value, entry });
    });
    if (args.length < min) {
      this.out.error('missing-argument', `"${what}" needs ${noun}`, nodeSpan(node), {
        hint: `write ${example}`,
      });
    }
    return out;
  }

  private stringValue(entry: Entry, what: string, example: string): string | undefined {
    const v = entry.value.value;
    if (typeof v === 'string') return v;
    this.out.error('bad-type', `${what} must be a string, got ${describeValue(entry)}`, spanOf(entry.value), {
      hint: `quote it: ${example}`,
    });
    return undefined;
  }

  private relativePath(path: string, entry: Entry, what: string): boolean {
    if (path.trim() === '') {
      this.out.error('bad-path', `${what} is empty`, spanOf(entry.value));
      return false;
    }
    if (path.startsWith('/') || path.split(/[\\/]/).includes('..')) {
      this.out.error('bad-path', `${what} "${path}" must stay inside the checkout`, spanOf(entry.value), {
        hint: 'use a path relative to the repository root, without ".."',
      });
      return false;
    }
    return true;
  }
}

class EnvScope {
  readonly values: Record<string, string> = {};
  readonly spans = new Map<string, Span>();
}
