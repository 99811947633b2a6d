/**
 * The typed model of `.solstice/workflow.kdl`: what a parsed, validated workflow file means.
 * Plain JSON-serialisable data, so activities can return it and workflows can carry it.
 * The language itself is documented in docs/workflow-file.md.
 */
import type { JobStep } from '../model/job-file';

/** Events a job can be limited to with `when { events ... }`. */
export const WORKFLOW_EVENTS = ['push', 'pull_request', 'tag', 'manual'] as const;
export type WorkflowEvent = (typeof WORKFLOW_EVENTS)[number];

/** The label a job runs on when it names none. */
export const DEFAULT_RUNS_ON = 'local';

/** A step: the same type the planner hands on and the runner runs (model/job-file.ts). */
export type Step = JobStep;

/** A job runs only if every given condition matches; an absent condition matches everything. */
export interface When {
  events?: WorkflowEvent[];
  /** Glob patterns: `*` matches within one path segment, `**` across segments. */
  branches?: string[];
}

export interface MatrixAxis {
  name: string;
  values: string[];
}

/** The job runs once per combination of axis values (the cartesian product, in file order). */
export interface Matrix {
  axes: MatrixAxis[];
}

export interface Job {
  id: string;
  /** Image label; may contain `${matrix.<axis>}`, resolved per matrix instance. */
  runsOn: string;
  /** Ids of jobs that must succeed first (all instances, for matrix jobs). */
  needs: string[];
  timeoutMs?: number;
  /** Workflow-level env merged with the job's own (the job's wins). */
  env: Record<string, string>;
  /**
   * Names of secrets from the orchestrator's secret store (SOLSTICE_SECRETS_FILE) the steps get
   * as environment variables; the values never enter the workflow file or the workflow history.
   */
  secrets?: string[];
  steps: Step[];
  /** Paths or globs, relative to the checkout root, collected after the steps. */
  artifacts: string[];
  when: When;
  matrix?: Matrix;
}

export interface WorkflowFile {
  name?: string;
  /**
   * Whether a newer pipeline of the same branch cancels this one's older, still running
   * pipelines (`cancel-superseded #false` opts out). Absent: yes.
   */
  cancelSuperseded?: boolean;
  jobs: Job[];
}

export type Severity = 'error' | 'warning';

/** One finding about a workflow file. Lines and columns are 1-based. */
export interface Diagnostic {
  severity: Severity;
  /** Stable, machine-readable kind, e.g. `syntax`, `unknown-node`, `cycle`. */
  code: string;
  message: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  /** What to do about it. */
  hint?: string;
  /** The name we think was meant (also in `message` as "did you mean"). */
  suggestion?: string;
}

export interface ParseResult {
  /** Set when there are no errors (warnings allowed). */
  workflow?: WorkflowFile;
  /** Errors and warnings, in file order. */
  diagnostics: Diagnostic[];
  ok: boolean;
}

export interface ParseOptions {
  /** Labels the image map knows; a `runs-on` outside this set is a warning. Default: [`local`]. */
  knownLabels?: readonly string[];
}
