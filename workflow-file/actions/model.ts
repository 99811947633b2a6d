/**
 * What a Forgejo / Gitea / GitHub Actions workflow file means to Solstice, once parsed and checked
 * against the subset Solstice runs (docs/actions.md). Plain JSON: expressions stay text (`${{ }}`)
 * where they can only be evaluated later (in the planner per trigger, or in the runner per step).
 */

/** A push or pull_request filter, as the file gives it. Absent lists match everything. */
export interface EventFilter {
  branches?: string[];
  branchesIgnore?: string[];
  tags?: string[];
  tagsIgnore?: string[];
  paths?: string[];
  pathsIgnore?: string[];
}

export interface DispatchInput {
  default?: string;
  required: boolean;
  type?: string;
  options?: string[];
}

export interface ActionsTriggers {
  push?: EventFilter;
  pullRequest?: EventFilter;
  /** `workflow_dispatch`: run by `solstice enqueue --workflow <file> --input k=v`. */
  dispatch?: { inputs: Record<string, DispatchInput> };
}

export interface RunDefaults {
  shell?: string;
  workingDirectory?: string;
}

export interface ActionsStep {
  /** 1-based position in the job; also the name of a step without `name` (`step 3`). */
  index: number;
  id?: string;
  name?: string;
  /** Raw condition (may be `${{ }}`); absent: `success()`. */
  if?: string;
  /** The script; for built-in actions, what the planner made of them. */
  run: string;
  /** `actions/checkout@…` or `actions/upload-artifact@…`: how the step came to be. */
  uses?: string;
  shell?: string;
  workingDirectory?: string;
  env: Record<string, string>;
  /** A boolean, or an expression evaluated by the runner. */
  continueOnError: boolean | string;
  timeoutMinutes?: number;
  line: number;
}

export interface MatrixStrategy {
  /** One object per job instance, in GitHub's order (product, minus exclude, plus include). */
  combinations: Record<string, unknown>[];
  failFast: boolean;
  maxParallel?: number;
}

export interface ActionsJob {
  id: string;
  /** The display name (may hold `${{ matrix.* }}`). */
  name?: string;
  needs: string[];
  /** Raw condition; absent: `success()`. */
  if?: string;
  /** Labels, each possibly an expression. */
  runsOn: string[];
  timeoutMinutes?: number;
  continueOnError: boolean;
  env: Record<string, string>;
  defaults: RunDefaults;
  outputs: Record<string, string>;
  strategy?: MatrixStrategy;
  concurrency?: Concurrency;
  steps: ActionsStep[];
  /** Paths and globs from `actions/upload-artifact` steps. */
  artifacts: string[];
  line: number;
}

export interface Concurrency {
  group: string;
  cancelInProgress: boolean;
}

export interface ActionsWorkflow {
  /** Repository-relative path, e.g. `.forgejo/workflows/ci.yml`. */
  path: string;
  name?: string;
  on: ActionsTriggers;
  env: Record<string, string>;
  defaults: RunDefaults;
  concurrency?: Concurrency;
  jobs: ActionsJob[];
}
