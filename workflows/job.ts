/**
 * JobWorkflow: one CI job on one fresh machine.
 *
 *   record → provision (per attempt) → runner "started" (boot timeout) → runner "finished"
 *   (job timeout) → destroy + finalize (always, even on failure and cancellation)
 *
 * Infrastructure failures are retried: provisioning by the activity retry policy, a machine
 * whose runner never connects by a fresh machine (up to maxMachineAttempts). A failing user
 * script is final: the workflow fails with a non-retryable `JobFailed` carrying the exit code.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { createForgeStatusActivities } from '../activities/forge-status';
import { runnerFinishedSignal, runnerStartedSignal, statusQuery } from './signals';
import type { JobInput, JobOutcome, JobStatus, MachineRef, RunnerFinished } from './types';

type Activities = ReturnType<typeof createActivities>;

const db = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

const provisioning = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
});

function destroyOn(ref: MachineRef) {
  return proxyActivities<Activities>({
    taskQueue: ref.hostTaskQueue,
    startToCloseTimeout: '2 minutes',
    // Destroy must eventually happen: no attempt limit, the host's worker will come back.
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });
}

export function outcomeOf(f: RunnerFinished): JobOutcome {
  switch (f.reason) {
    case 'EXITED':
      return f.exitCode === 0
        ? { state: 'success', exitCode: 0 }
        : { state: 'failure', exitCode: f.exitCode, message: `job script exited with code ${f.exitCode}` };
    case 'CHECKOUT_FAILED':
    case 'NO_JOB_DEFINITION':
      return { state: 'failure', message: f.message };
    case 'RUNNER_ERROR':
      return { state: 'error', message: f.message };
  }
}

// Forge API errors are retried a few times with backoff, then recorded (the failed activity in
// the history, a warning in the workflow log); they never change the job's result.
const forge = proxyActivities<ReturnType<typeof createForgeStatusActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 4 },
});

function statusText(o: JobOutcome): string {
  if (o.state === 'success') return 'passed';
  if (o.state === 'cancelled') return 'cancelled';
  return o.message ?? o.state;
}

/** Reports the job's state to the forge it came from; returns the GitHub check run id. */
async function reportStatus(
  input: JobInput,
  state: JobOutcome['state'] | 'pending',
  description: string,
  checkRunId?: number,
): Promise<number | undefined> {
  // Runs started before status reporting existed replay without these activities.
  if (input.source === 'manual' || !patched('forge-status')) return checkRunId;
  try {
    const r = await forge.reportForgeStatus({
      forge: input.source,
      repoUrl: input.repoUrl,
      commitSha: input.commitSha,
      job: input.workflowJobId ?? 'job',
      jobId: input.jobId,
      state,
      description,
      checkRunId,
    });
    return r.checkRunId ?? checkRunId;
  } catch (err) {
    log.warn('reporting the job status to the forge failed; the job result stands', {
      state,
      error:
        err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err),
    });
    return checkRunId;
  }
}

/** An activity's own message (e.g. an unknown label's known labels), not "Activity task failed". */
function failureMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err instanceof ActivityFailure && err.cause instanceof Error ? err.cause.message : err.message;
}

function minutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}

export async function JobWorkflow(input: JobInput): Promise<JobOutcome> {
  const status: JobStatus = { state: 'queued', attempt: 0 };
  let started = 0; // attempt whose runner connected
  let finished: RunnerFinished | undefined;

  setHandler(statusQuery, () => status);
  // A runner from an earlier attempt cannot get here (its token was revoked); the check is belt and braces.
  setHandler(runnerStartedSignal, (s) => {
    if (s.attempt === status.attempt) started = s.attempt;
  });
  setHandler(runnerFinishedSignal, (f) => {
    if (f.attempt === status.attempt && finished === undefined) finished = f;
  });

  await db.recordJob(input, workflowInfo().workflowId);
  // Not awaited: a slow or failing forge must not delay the job.
  const pendingReport = reportStatus(input, 'pending', 'queued');

  let machine: MachineRef | undefined;
  let outcome: JobOutcome;
  let cancellation: unknown;
  try {
    for (;;) {
      status.attempt += 1;
      status.state = 'provisioning';
      machine = await provisioning.provisionMachine({
        jobId: input.jobId,
        attempt: status.attempt,
        label: input.label,
        definition: { steps: input.steps, env: input.env, timeoutMs: input.timeoutMs },
      });
      if (await condition(() => started === status.attempt, input.bootTimeoutMs)) break;

      const reason = `runner did not connect within ${minutes(input.bootTimeoutMs)} (attempt ${status.attempt})`;
      const dead = machine;
      machine = undefined;
      await CancellationScope.nonCancellable(() =>
        destroyOn(dead).destroyMachine({ jobId: input.jobId, ref: dead, keepConsole: true, reason }),
      );
      if (status.attempt >= input.maxMachineAttempts) {
        throw ApplicationFailure.nonRetryable(reason, 'RunnerNeverConnected');
      }
    }
    status.state = 'running';
    await condition(() => finished !== undefined, input.timeoutMs);
    // Assigned by the signal handler, which the compiler cannot see.
    const result = finished as RunnerFinished | undefined;
    outcome = result
      ? outcomeOf(result)
      : { state: 'failure', message: `job exceeded its timeout of ${minutes(input.timeoutMs)}` };
  } catch (err) {
    if (isCancellation(err)) cancellation = err;
    outcome = cancellation
      ? { state: 'cancelled', message: 'cancelled' }
      : { state: 'error', message: failureMessage(err) };
  }

  // Cleanup must run even when the workflow is being cancelled.
  await CancellationScope.nonCancellable(async () => {
    if (machine)
      await destroyOn(machine).destroyMachine({ jobId: input.jobId, ref: machine, keepConsole: false });
    await db.finalizeJob(input.jobId, outcome);
    await reportStatus(input, outcome.state, statusText(outcome), await pendingReport);
  });
  Object.assign(status, { state: outcome.state, exitCode: outcome.exitCode, message: outcome.message });

  // Rethrowing the cancellation makes Temporal record the run as Canceled rather than Failed.
  if (cancellation) throw cancellation;
  if (outcome.state !== 'success') {
    throw ApplicationFailure.nonRetryable(
      outcome.message ?? outcome.state,
      outcome.state === 'failure' ? 'JobFailed' : 'JobErrored',
      outcome,
    );
  }
  return outcome;
}
