/** Types shared by workflow code, activities, services and the CLI. Pure data: safe in the workflow sandbox. */
// Types only: model/job-file.ts holds zod schemas, which workflow code has no use for at run time.
import type { JobDefinitionPath } from './job-definition-paths';
import type { JobDefinition } from './job-file';

export type JobSource = 'manual' | 'forgejo' | 'github';
export type JobState = 'queued' | 'provisioning' | 'running' | 'success' | 'failure' | 'error' | 'cancelled';
export const FINAL_STATES: readonly JobState[] = ['success', 'failure', 'error', 'cancelled'];

/**
 * A job: its identity, where it runs, and its definition (model/job-file.ts: `steps`, `env`,
 * secret names, `artifacts`). Without steps the runner runs `.solstice/job.sh` from the
 * checkout as a one-step job.
 */
export interface JobInput extends Omit<JobDefinition, 'timeoutMs'> {
  jobId: string;
  source: JobSource;
  repoUrl: string;
  commitSha: string;
  ref?: string;
  /** Which provider/image runs the job ("local" for now). */
  label: string;
  /** How long the job may run once its runner started. */
  timeoutMs: number;
  /** How long a machine may take until its runner connects. */
  bootTimeoutMs: number;
  /** Fresh machines to try when one never connects. */
  maxMachineAttempts: number;
  /** Set when the job belongs to a pipeline: the PipelineWorkflow's id and the job's id in the file. */
  pipelineId?: string;
  workflowJobId?: string;
}

/** Why the runner ended; mirrors runner.v1.FinishReason. */
export type FinishReason =
  | 'EXITED'
  | 'CHECKOUT_FAILED'
  | 'CHECKOUT_UNAVAILABLE'
  | 'NO_JOB_DEFINITION'
  | 'RUNNER_ERROR'
  | 'INTERRUPTED';

export interface RunnerStarted {
  attempt: number;
  hostname: string;
}

/** A step started on the machine (the runner's `step i/n "name" started` line). */
export interface RunnerStep {
  attempt: number;
  index: number;
  total: number;
  name: string;
}

export interface RunnerFinished {
  attempt: number;
  reason: FinishReason;
  exitCode: number;
  message: string;
  durationMs: number;
  /** An Actions workflow job's outputs (for `needs.<id>.outputs` of later jobs). */
  outputs?: Record<string, string>;
}

export interface JobOutcome {
  state: Extract<JobState, 'success' | 'failure' | 'error' | 'cancelled'>;
  exitCode?: number;
  message?: string;
  /** A successful Actions workflow job's outputs. */
  outputs?: Record<string, string>;
}

export interface JobStatus {
  state: JobState;
  attempt: number;
  /** The step that started last on the machine. */
  step?: { index: number; total: number; name: string };
  exitCode?: number;
  message?: string;
  /** Warm from a pool or booted cold, when the label has a pool (MachineRef.origin). */
  machineOrigin?: string;
}

/**
 * Everything needed to destroy a machine from any process on its host, stored in workflow
 * history and in the `vms` table. Never holds secrets.
 */
export interface MachineHandle {
  /** Unique per job attempt, e.g. `job-<uuid>-1`; also the tag on every OS object we create. */
  machineId: string;
  provider: string;
  /** The host (SOLSTICE_HOST_ID) that made it: destroy must run there. */
  hostId: string;
  /** Provider-specific, JSON-serialisable. */
  details: Record<string, string | number | boolean | null>;
}

export interface MachineRef {
  handle: MachineHandle;
  /** Task queue of the host that made the machine: destroy runs there. */
  hostTaskQueue: string;
  /**
   * How the machine came to be when its label has a warm pool on the host (the job log's first
   * line and the Web UI say it): "warm VM from pool debian-12, idle 42 s", or why it booted cold.
   */
  origin?: string;
}

/** A job's machine slot: the host that provisions (and so destroys) its machines. */
export interface LeaseGrant {
  hostId: string;
  taskQueue: string;
}

export function hostTaskQueue(baseQueue: string, hostId: string): string {
  return `${baseQueue}@${hostId}`;
}

/** What triggered a pipeline; decides which jobs' `when { events ... }` match. */
export type PipelineEvent = 'push' | 'pull_request' | 'tag' | 'manual';
export type PipelineState = 'running' | 'success' | 'failure' | 'error' | 'cancelled';
export type PipelineJobState =
  'waiting' | 'running' | 'success' | 'failure' | 'error' | 'cancelled' | 'skipped';

export interface PipelineInput {
  pipelineId: string;
  source: JobSource;
  event: PipelineEvent;
  repoUrl: string;
  commitSha: string;
  ref?: string;
  /** Label for a job.sh pipeline's one job (workflow files name their own `runs-on`). */
  label?: string;
  /**
   * Git transports planning and checkout may use for repoUrl (GIT_ALLOW_PROTOCOL), decided
   * at ingress: `https` and `ssh` for a forge's repository, `file` too for an operator's
   * `solstice enqueue`. Unset: `https` and `ssh`.
   */
  gitProtocols?: string[];
  /** A job's timeout when its workflow file gives none. */
  timeoutMs: number;
  bootTimeoutMs: number;
  maxMachineAttempts: number;
  /** Set by `solstice rerun`: the pipeline this one reruns. */
  rerunOf?: string;
  /** `rerun --failed`: jobs that succeeded before (name → their job id) are not run again. */
  reuse?: Record<string, string>;
  /** SOLSTICE_PUBLIC_URL at start: the jobs' Web UI details link to their job pages. */
  publicUrl?: string;
  /** `solstice enqueue --workflow F --input k=v`: Actions workflow F runs as workflow_dispatch. */
  dispatch?: { workflow: string; inputs: Record<string, string> };
  /** A push: the commit its branch pointed at before, so Actions `paths` filters see what changed. */
  beforeSha?: string;
  /** SOLSTICE_FORGE_STATUS_DEADLINE at start: how long one commit status is retried. */
  forgeStatusDeadlineMs?: number;
}

/**
 * One job (matrix instance) of a pipeline as the plan activity read it from the commit. Its
 * definition has no steps for a job.sh pipeline: the runner runs .solstice/job.sh.
 */
export interface PlannedJob extends JobDefinition {
  name: string;
  /** Names of the planned jobs that must succeed first. */
  needs: string[];
  runsOn: string;
  env: Record<string, string>;
  /** Set when the job's `when` does not match the trigger: it is recorded as skipped. */
  skipReason?: string;
  /**
   * Actions `continue-on-error: true` on the job: when it fails, the jobs that need it still run
   * and the pipeline does not fail because of it (GitHub's "allow the run to pass").
   */
  continueOnError?: boolean;
  /** An instance of an Actions matrix job: its `strategy`, shared by the instances of `group`. */
  matrix?: MatrixStrategy;
}

export interface MatrixStrategy {
  /** What the instances share: `<workflow stem>/<job id>`. */
  group: string;
  /** An instance that fails cancels the running and waiting instances of the group. */
  failFast: boolean;
  /** At most this many instances of the group run at once. */
  maxParallel?: number;
}

export interface PipelinePlan {
  /** Where the jobs came from: a JobDefinitionPath, or the Actions workflow files that ran. */
  definition: JobDefinitionPath | (string & {});
  /** A newer pipeline of the same branch cancels older running ones (`cancel-superseded`). */
  cancelSuperseded: boolean;
  jobs: PlannedJob[];
}

export interface PipelineOutcome {
  state: Exclude<PipelineState, 'running'>;
  message?: string;
  jobs: Record<string, PipelineJobState>;
}

export interface PipelineStatus {
  state: PipelineState;
  jobs: Record<string, { state: PipelineJobState; jobId?: string }>;
}

/** The branch a ref names (`refs/heads/main` → `main`), or undefined for tags and other refs. */
export function branchOf(ref: string | undefined): string | undefined {
  if (!ref) return undefined;
  if (ref.startsWith('refs/heads/')) return ref.slice('refs/heads/'.length);
  return ref.startsWith('refs/') ? undefined : ref;
}

/** A child job's workflow id (DESIGN.md): deterministic, readable in the Web UI. */
export function pipelineJobWorkflowId(pipelineWorkflowId: string, jobName: string): string {
  return `${pipelineWorkflowId}/job/${jobName}`;
}
