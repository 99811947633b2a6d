import { defineQuery, defineSignal } from '@temporalio/workflow';
import type {
  JobStatus,
  LeaseGrant,
  PipelineStatus,
  RunnerFinished,
  RunnerStarted,
  RunnerStep,
} from '../model/domain';

/** Sent by the log service when the runner called StartJob. */
export const runnerStartedSignal = defineSignal<[RunnerStarted]>('runnerStarted');
/** Sent by the log service when it stores the runner's line saying a step started. */
export const runnerStepSignal = defineSignal<[RunnerStep]>('runnerStep');
/** Sent by the log service when the runner called FinishJob and every log line is stored. */
export const runnerFinishedSignal = defineSignal<[RunnerFinished]>('runnerFinished');
/**
 * Sent by whichever process's scheduling round granted the job's machine slot (capacity/grants.ts).
 * The waiting workflow also looks at its lease now and then, should a signal be lost.
 */
export const leaseGrantedSignal = defineSignal<[LeaseGrant]>('leaseGranted');
/** Sent to a host's PoolWorkflow after a claim (refill now) or a config change; carries nothing. */
export const poolKickSignal = defineSignal('poolKick');
export const statusQuery = defineQuery<JobStatus>('status');
export const pipelineStatusQuery = defineQuery<PipelineStatus>('pipelineStatus');
