import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { JobStatus, PipelineStatus, RunnerFinished, RunnerStarted } from './types';

/** Sent by the log service when the runner called StartJob. */
export const runnerStartedSignal = defineSignal<[RunnerStarted]>('runnerStarted');
/** Sent by the log service when the runner called FinishJob and every log line is stored. */
export const runnerFinishedSignal = defineSignal<[RunnerFinished]>('runnerFinished');
export const statusQuery = defineQuery<JobStatus>('status');
export const pipelineStatusQuery = defineQuery<PipelineStatus>('pipelineStatus');
