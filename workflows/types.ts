/** Types shared by workflow code, activities, services and the CLI. Pure data: safe in the workflow sandbox. */

export type JobSource = 'manual' | 'forgejo' | 'github';
export type JobState = 'queued' | 'provisioning' | 'running' | 'success' | 'failure' | 'error' | 'cancelled';
export const FINAL_STATES: readonly JobState[] = ['success', 'failure', 'error', 'cancelled'];

export interface JobInput {
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
  /**
   * The job's steps (from `.solstice/workflow.kdl`). Absent: the runner runs `.solstice/job.sh`
   * from the checkout as a one-step job.
   */
  steps?: JobStepSpec[];
  /** Extra environment for every step. */
  env?: Record<string, string>;
  /** Set when the job belongs to a pipeline: the PipelineWorkflow's id and the job's id in the file. */
  pipelineId?: string;
  workflowJobId?: string;
}

/** One step as it travels to the machine (same shape as common/workflow-file's Step). */
export interface JobStepSpec {
  name: string;
  run: string;
  workingDirectory?: string;
  continueOnError: boolean;
}

/** What the machine's job file carries besides the job's identity. */
export interface JobDefinitionSpec {
  steps?: JobStepSpec[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Why the runner ended; mirrors runner.v1.FinishReason. */
export type FinishReason = 'EXITED' | 'CHECKOUT_FAILED' | 'NO_JOB_DEFINITION' | 'RUNNER_ERROR';

export interface RunnerStarted {
  attempt: number;
  hostname: string;
}

export interface RunnerFinished {
  attempt: number;
  reason: FinishReason;
  exitCode: number;
  message: string;
  durationMs: number;
}

export interface JobOutcome {
  state: Extract<JobState, 'success' | 'failure' | 'error' | 'cancelled'>;
  exitCode?: number;
  message?: string;
}

export interface JobStatus {
  state: JobState;
  attempt: number;
  exitCode?: number;
  message?: string;
}

export interface MachineRef {
  handle: import('../provisioning/contract').MachineHandle;
  /** Task queue of the host that made the machine: destroy runs there. */
  hostTaskQueue: string;
}

export function hostTaskQueue(baseQueue: string, hostId: string): string {
  return `${baseQueue}@${hostId}`;
}
