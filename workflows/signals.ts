import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { JobStatus, PipelineStatus, RunnerFinished, RunnerStarted, RunnerStep } from '../model/domain';

/** Sent by the log service when the runner called StartJob. */
export const runnerStartedSignal = defineSignal<[RunnerStarted]>('runnerStarted');
/** Sent by the log service when it stores the runner's line saying a step started. */
export const runnerStepSignal = defineSignal<[RunnerStep]>('runnerStep');
/** Sent by the log service when the runner called FinishJob and every log line is stored. */
export const runnerFinishedSignal = defineSignal<[RunnerFinished]>('runnerFinished');
export const statusQuery = defineQuery<JobStatus>('status');
export const pipelineStatusQuery = defineQuery<PipelineStatus>('pipelineStatus');
