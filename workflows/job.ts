/**
 * JobWorkflow: one CI job on one fresh machine.
 *
 *   record → machine slot (lease) → provision (per attempt) → runner "started" (boot timeout)
 *   → runner "finished" (job timeout) → destroy + release + finalize (always, even on failure
 *   and cancellation)
 *
 * Infrastructure failures are retried: provisioning by the activity retry policy; a machine
 * whose runner never connects, or whose runner goes silent for the liveness window while the
 * job runs (the machine crashed, lost power or its network), by a fresh machine, up to
 * maxMachineAttempts; then the job ends `error`. A failing user script is final: the workflow
 * fails with a non-retryable `JobFailed` carrying the exit code.
 *
 * Liveness: the runner heartbeats over its gRPC channel whatever its steps print; the log
 * service stores the time of the last one. While the job runs, the workflow sleeps (a durable
 * timer) until the window since that contact would close and then looks (a short activity), so
 * a silent step is never mistaken for a dead machine and a dead one is noticed about one
 * window after its last heartbeat.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import { db, type Activities } from './bookkeeping';
import type { LeaseState } from '../activities/capacity';
import type { createForgeStatusActivities } from '../activities/forge-status';
import {
  leaseGrantedSignal,
  runnerFinishedSignal,
  runnerStartedSignal,
  runnerStepSignal,
  statusQuery,
} from './signals';
import type {
  JobInput,
  JobOutcome,
  JobStatus,
  LeaseGrant,
  MachineRef,
  RunnerFinished,
} from '../model/domain';
import { SEARCH_ATTRIBUTES } from '../model/search-attributes';
import { JOB_SCRIPT_PATH } from '../model/job-definition-paths';

/**
 * The machine slot arrives by signal; between signals the workflow reads its lease now and then
 * (a lost signal costs at most this long), backing off so a long queue reads the database little.
 */
const LEASE_LOOK_FIRST_MS = 5_000;
const LEASE_LOOK_MAX_MS = 60_000;

/**
 * The job's own database bookkeeping (record, lease request and look, release) as local
 * activities: run by the worker that runs the workflow task, recorded as markers, with the same
 * timeout and unlimited retries as `db`. Each is a few short, idempotent statements that neither
 * heartbeat nor need a particular host, so only the task queue round trip goes (about 100 ms an
 * activity on a busy 2-core host, bench/jobs.ts). A worker that dies mid-activity runs it again
 * on replay, as a retried activity would.
 */
const localDb = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Runs recorded before the bookkeeping became local keep scheduling it as activities. */
const LOCAL_BOOKKEEPING = 'local-bookkeeping';

/** Runs recorded before a finished job's log was stored beside its machine's destroy keep the old order. */
const FINALIZE_BESIDE_DESTROY = 'finalize-beside-destroy';

/** Provisioning on the host that granted the slot; a host that is gone fails it after a while. */
function provisionOn(lease: LeaseGrant) {
  return proxyActivities<Activities>({
    taskQueue: lease.taskQueue,
    scheduleToStartTimeout: '5 minutes',
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '1 minute',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
  });
}

/**
 * Destroying a lost machine: its host may be gone with it (power, network), and then no worker
 * ever takes the task. Waiting for the host TTL (the time after which the scheduler, too, counts
 * a silent host as gone) tells the two apart; a gone host's machines are swept when its worker
 * starts again (provisioning/sweeper.ts: machines whose job ended).
 */
function destroyLostOn(ref: MachineRef, hostTtlMs: number) {
  return proxyActivities<Activities>({
    taskQueue: ref.hostTaskQueue,
    scheduleToStartTimeout: hostTtlMs,
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });
}

/** Histories recorded before the contact check said the host TTL: the setting's default. */
const DEFAULT_HOST_TTL_MS = 60_000;

function isScheduleToStartTimeout(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}

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
    // The runner was told to stop (the machine shutting down or being destroyed): the script's
    // 143/137 is what the signal did to it, not its own failure.
    case 'INTERRUPTED':
      return { state: 'error', message: f.message };
    case 'EXITED':
      return f.exitCode === 0
        ? {
            state: 'success',
            exitCode: 0,
            ...(f.outputs && Object.keys(f.outputs).length > 0 ? { outputs: f.outputs } : {}),
          }
        : { state: 'failure', exitCode: f.exitCode, message: `job script exited with code ${f.exitCode}` };
    // What the repository holds is the user's: a commit that is not in it (force-pushed away),
    // a commit without a job definition.
    case 'CHECKOUT_FAILED':
    case 'NO_JOB_DEFINITION':
      return { state: 'failure', message: f.message };
    // A repository that could not be fetched (forge down, credentials refused, timeout) says
    // nothing about the commit: the runner retried it for its retry window, then gave up.
    case 'CHECKOUT_UNAVAILABLE':
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
  // A pipeline's jobs are reported by the pipeline, in order with the rest of its statuses.
  if (input.source === 'manual' || input.pipelineId) return checkRunId;
  try {
    const r = await forge.reportForgeStatus.executeWithOptions(
      { summary: `report ${state} to ${input.source}` },
      [
        {
          forge: input.source,
          repoUrl: input.repoUrl,
          commitSha: input.commitSha,
          job: input.workflowJobId ?? 'job',
          jobId: input.jobId,
          state,
          description,
          checkRunId,
        },
      ],
    );
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

/**
 * Shows the job's state in the Temporal Web UI: the run's current details (markdown) and its
 * `SolsticeState` search attribute. The attribute is upserted only when the run was started
 * with our attributes: otherwise the server does not know them and would fail the task.
 */
function showState(status: JobStatus, details: string, upsert = true): void {
  const origin = status.machineOrigin ? `\n\n${status.machineOrigin}` : '';
  setCurrentDetails(`**${status.state}** (attempt ${status.attempt})\n\n${details}${origin}`);
  if (upsert && workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.state) !== undefined) {
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.state, value: status.state }]);
  }
}

/** Which step runs, once the runner said; until then, the steps it will run. */
function runningDetails(input: JobInput, status: JobStatus): string {
  const s = status.step;
  return s ? `step ${s.index}/${s.total} \`${s.name}\`` : `running steps ${stepList(input)}`;
}

function stepList(input: JobInput): string {
  return input.steps ? input.steps.map((s) => `\`${s.name}\``).join(', ') : `\`${JOB_SCRIPT_PATH}\``;
}

/** An activity's failure arrives wrapped ("Activity task failed"); its cause says why. */
function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

function minutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}

/** Waits for the job's machine slot: granted by signal, or found at a backstop look. */
async function waitForLease(
  input: JobInput,
  granted: () => LeaseGrant | undefined,
  bookkeeping: typeof db,
  ask: () => Promise<LeaseState> = () =>
    bookkeeping.requestLease.executeWithOptions({ summary: `ask for a ${input.label} slot` }, [
      { jobId: input.jobId, label: input.label },
    ]),
): Promise<LeaseGrant> {
  let state = await ask();
  for (let lookMs = LEASE_LOOK_FIRST_MS; ; lookMs = Math.min(lookMs * 2, LEASE_LOOK_MAX_MS)) {
    const grant = state.grant ?? granted();
    if (grant) return grant;
    if (await condition(() => granted() !== undefined, lookMs)) return granted() as LeaseGrant;
    state = await bookkeeping.checkLease.executeWithOptions({ summary: 'look at the machine slot' }, [
      { jobId: input.jobId },
    ]);
  }
}

type RunEnd =
  | { kind: 'finished'; result: RunnerFinished }
  | { kind: 'timeout' }
  | { kind: 'lost'; livenessMs: number; hostTtlMs: number };

/**
 * Waits for the attempt's runner to finish, until the job timeout, while watching that the
 * machine is alive: a timer to when the liveness window since the last runner contact would
 * close, then a look at the contact the log service recorded.
 */
async function watchRun(
  input: JobInput,
  attempt: number,
  finished: () => RunnerFinished | undefined,
): Promise<RunEnd> {
  const deadline = Date.now() + input.timeoutMs;
  // The first look is at once: it learns the window (the worker's setting) and the runner's
  // StartJob was its first contact.
  let nextLookMs = 0;
  for (;;) {
    if (finished() !== undefined) break;
    const left = deadline - Date.now();
    if (left <= 0) return { kind: 'timeout' };
    if (nextLookMs > 0 && (await condition(() => finished() !== undefined, Math.min(left, nextLookMs))))
      break;
    if (Date.now() >= deadline) return { kind: 'timeout' };
    const c = await db.checkMachineContact.executeWithOptions({ summary: 'is the machine alive?' }, [
      { jobId: input.jobId, attempt },
    ]);
    if (finished() !== undefined) break;
    if (c.silentMs >= c.livenessMs)
      return { kind: 'lost', livenessMs: c.livenessMs, hostTtlMs: c.hostTtlMs ?? DEFAULT_HOST_TTL_MS };
    // Never a busy loop, whatever the clocks say.
    nextLookMs = Math.max(c.livenessMs - c.silentMs, Math.ceil(c.livenessMs / 10));
  }
  return { kind: 'finished', result: finished() as RunnerFinished };
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
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
  // Progress for the Web UI only: details, no commands (the attempt check as above).
  setHandler(runnerStepSignal, (s) => {
    if (s.attempt !== status.attempt) return;
    status.step = { index: s.index, total: s.total, name: s.name };
    if (status.state === 'running') showState(status, runningDetails(input, status), false);
  });
  setHandler(runnerFinishedSignal, (f) => {
    if (f.attempt === status.attempt && finished === undefined) finished = f;
  });
  let granted: LeaseGrant | undefined;
  setHandler(leaseGrantedSignal, (g) => {
    granted ??= g;
  });

  // Decided once, before the first command, so a run keeps one kind of bookkeeping throughout.
  const bookkeeping = patched(LOCAL_BOOKKEEPING) ? localDb : db;
  setCurrentDetails(`**queued**\n\nsteps: ${stepList(input)}`);
  await bookkeeping.recordJob.executeWithOptions({ summary: 'record job' }, [
    input,
    workflowInfo().workflowId,
  ]);
  // Not awaited: a slow or failing forge must not delay the job.
  const pendingReport = reportStatus(input, 'pending', 'queued');

  let machine: MachineRef | undefined;
  /** The runner called FinishJob: its last line is stored, and the log service takes no more. */
  let runnerDone = false;
  let outcome: JobOutcome;
  let cancellation: unknown;
  try {
    showState(status, `waiting for a \`${input.label}\` machine slot`);
    let lease = await waitForLease(input, () => granted, bookkeeping);
    for (;;) {
      status.attempt += 1;
      status.state = 'provisioning';
      status.step = undefined;
      showState(status, `booting a \`${input.label}\` machine`);
      // Not cancellable: a cancel that lands while the machine boots would drop the activity's
      // result and leave its machine behind. Once booted, the next wait sees the cancel and the
      // cleanup below destroys it.
      machine = await CancellationScope.nonCancellable(() =>
        provisionOn(lease).provisionMachine.executeWithOptions({ summary: `boot VM ${input.label}` }, [
          {
            jobId: input.jobId,
            attempt: status.attempt,
            label: input.label,
            definition: {
              steps: input.steps,
              env: input.env,
              secrets: input.secrets,
              artifacts: input.artifacts,
              timeoutMs: input.timeoutMs,
              ...(input.actions ? { actions: input.actions } : {}),
              ...(input.needsOutputs ? { needsOutputs: input.needsOutputs } : {}),
            },
            tokenValidForMs: input.bootTimeoutMs + input.timeoutMs,
          },
        ]),
      );
      // Warm or cold (when the label has a pool): the Web UI says so with the job's state.
      status.machineOrigin = machine.origin;
      if (!(await condition(() => started === status.attempt, input.bootTimeoutMs))) {
        const reason = `runner did not connect within ${minutes(input.bootTimeoutMs)} (attempt ${status.attempt})`;
        const dead = machine;
        machine = undefined;
        await CancellationScope.nonCancellable(() =>
          destroyOn(dead).destroyMachine.executeWithOptions(
            { summary: 'destroy machine (never connected)' },
            [{ jobId: input.jobId, ref: dead, keepConsole: true, reason }],
          ),
        );
        if (status.attempt >= input.maxMachineAttempts) {
          throw ApplicationFailure.nonRetryable(reason, 'RunnerNeverConnected');
        }
        continue;
      }

      status.state = 'running';
      showState(status, runningDetails(input, status));
      const end = await watchRun(input, status.attempt, () => finished);
      if (end.kind === 'finished') {
        outcome = outcomeOf(end.result);
        runnerDone = true;
        break;
      }
      if (end.kind === 'timeout') {
        outcome = { state: 'failure', message: `job exceeded its timeout of ${minutes(input.timeoutMs)}` };
        break;
      }

      // The machine is gone (or cut off): an infrastructure failure, never the script's.
      const last = status.attempt >= input.maxMachineAttempts;
      const lost =
        `machine lost: no runner contact for ${seconds(end.livenessMs)}; ` +
        (last
          ? `giving up after ${status.attempt}/${input.maxMachineAttempts} attempts`
          : `retrying on a fresh machine, attempt ${status.attempt + 1}/${input.maxMachineAttempts}`);
      const dead = machine;
      machine = undefined;
      const hostGone = await CancellationScope.nonCancellable(async () => {
        await db.recordMachineLost.executeWithOptions({ summary: 'record machine lost' }, [
          { jobId: input.jobId, attempt: status.attempt, message: lost },
        ]);
        try {
          await destroyLostOn(dead, end.hostTtlMs).destroyMachine.executeWithOptions(
            { summary: 'destroy machine (lost)' },
            [{ jobId: input.jobId, ref: dead, keepConsole: false, reason: lost }],
          );
          return false;
        } catch (err) {
          if (!isScheduleToStartTimeout(err)) throw err;
          return true;
        }
      });
      if (last) throw ApplicationFailure.nonRetryable(lost, 'MachineLost');
      if (hostGone) {
        // The host went with its machine: the next attempt needs a slot on a live host.
        const reason = `host ${lease.hostId} is gone (its worker took no task for ${seconds(end.hostTtlMs)})`;
        log.warn(reason, { jobId: input.jobId });
        status.state = 'queued';
        showState(status, `${reason}: waiting for a \`${input.label}\` machine slot on another host`);
        granted = undefined;
        lease = await waitForLease(
          input,
          () => granted,
          bookkeeping,
          () =>
            bookkeeping.requeueLease.executeWithOptions({ summary: 'ask for a slot on another host' }, [
              { jobId: input.jobId, reason },
            ]),
        );
      }
    }
  } catch (err) {
    if (isCancellation(err)) cancellation = err;
    outcome = cancellation
      ? { state: 'cancelled', message: 'cancelled' }
      : { state: 'error', message: failureMessage(err) };
  }

  // Cleanup must run even when the workflow is being cancelled.
  await CancellationScope.nonCancellable(async () => {
    const destroyAndRelease = async () => {
      if (machine)
        await destroyOn(machine).destroyMachine.executeWithOptions({ summary: 'destroy machine' }, [
          { jobId: input.jobId, ref: machine, keepConsole: false },
        ]);
      // Capacity: the slot is free only once the machine is gone (a cancelled wait gives it up too).
      await bookkeeping.releaseLease.executeWithOptions({ summary: 'release machine slot' }, [
        { jobId: input.jobId, reason: `job ${outcome.state}` },
      ]);
    };
    const finalize = () =>
      db.finalizeJob.executeWithOptions({ summary: 'store log' }, [input.jobId, outcome]);
    const report = async () => reportStatus(input, outcome.state, statusText(outcome), await pendingReport);
    // A runner that finished has stored its last line: its log is final, and is stored (and the
    // final status reported) while its machine goes. Otherwise (a timeout, a cancel, a lost
    // machine) a runner may still be writing until its machine is gone, so the log waits for that.
    if (runnerDone && patched(FINALIZE_BESIDE_DESTROY))
      await Promise.all([destroyAndRelease(), finalize().then(report)]);
    else {
      await destroyAndRelease();
      await finalize();
      await report();
    }
  });
  Object.assign(status, { state: outcome.state, exitCode: outcome.exitCode, message: outcome.message });
  showState(status, outcome.message ?? (outcome.state === 'success' ? 'all steps passed' : outcome.state));

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
