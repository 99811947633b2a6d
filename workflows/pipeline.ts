/**
 * PipelineWorkflow: one per triggering event (push, pull request, enqueue, rerun) on a commit.
 *
 *   record → plan (read .solstice/workflow.kdl or job.sh at the commit) → cancel superseded
 *   pipelines of the branch → a child JobWorkflow per job, each started as soon as every job
 *   it needs succeeded (independent jobs run in parallel) → aggregate state
 *
 * Commit statuses: the pipeline reports every planned job's state to the forge, `pending` for
 * each as soon as the plan is known (so the commit never looks green while jobs are left),
 * `skipped` for jobs that will not run, and one pipeline-level status when no job could be
 * planned. Updates go out one after another in the order they happened (one chain per
 * pipeline), each retried with backoff until SOLSTICE_FORGE_STATUS_DEADLINE, so a forge that
 * comes back gets the final states, in order, and a late `pending` never overwrites a result.
 *
 * A job whose needs did not all succeed ends `skipped` without running; a failed Actions job with
 * `continue-on-error: true` counts as passed for its needs and for the pipeline's result. The
 * instances of an Actions matrix job share its strategy: at most `max-parallel` of them run at
 * once, and with `fail-fast` one that fails cancels the others (running or waiting). Plans
 * without these fields (every plan before them) schedule exactly as before. Cancelling the
 * pipeline cancels its running jobs (each destroys its machine) and waits for them, so a
 * cancelled pipeline leaves nothing behind; jobs not started yet end `cancelled`.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowCancellationType,
  ChildWorkflowFailure,
  executeChild,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { db, type Activities } from './bookkeeping';
import type { createForgeStatusActivities } from '../activities/forge-status';
import type { ReportedState } from '../forges/forge';
import { JobWorkflow } from './job';
import { pipelineStatusQuery } from './signals';
import {
  pipelineJobWorkflowId,
  type JobInput,
  type PipelineInput,
  type PipelineJobState,
  type PipelineOutcome,
  type PipelinePlan,
  type PipelineState,
  type PipelineStatus,
  type PlannedJob,
} from '../model/domain';
import { SEARCH_ATTRIBUTES } from '../model/search-attributes';
import { runDetails, runSummary, searchAttributesFor } from './web-ui';

const planning = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  // Planning beats while git and the parsing thread work: a stuck worker is noticed, and a
  // cancellation reaches the activity (and kills its git).
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
});

/** User mistakes in the repository: the pipeline fails (not errors) and is not retried. */
const USER_ERRORS = new Set(['InvalidWorkflowFile', 'NoJobDefinition']);

const DONE: readonly PipelineJobState[] = ['success', 'failure', 'error', 'cancelled', 'skipped'];

function messageOf(err: unknown): string {
  let e: unknown = err;
  // Activity and child failures wrap the failure that says what happened.
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}

/** How a child JobWorkflow ended, from the failure it threw. */
function jobStateOf(err: unknown): PipelineJobState {
  if (isCancellation(err)) return 'cancelled';
  const cause = err instanceof ChildWorkflowFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return cause.type === 'JobFailed' ? 'failure' : 'error';
  return 'error';
}

export function aggregateState(
  states: PipelineJobState[],
  cancelled: boolean,
): Exclude<PipelineState, 'running'> {
  if (cancelled) return 'cancelled';
  if (states.includes('failure')) return 'failure';
  if (states.includes('error')) return 'error';
  if (states.includes('cancelled')) return 'cancelled';
  return 'success';
}

/**
 * The pipeline's jobs and their states as the run's current details in the Temporal Web UI.
 * `SolsticeState` follows the pipeline's state when the run was started with our search
 * attributes (otherwise the server does not know them).
 */
function showPipeline(status: PipelineStatus): void {
  const jobs = Object.entries(status.jobs).map(([name, j]) => `- \`${name}\` ${j.state}`);
  setCurrentDetails([`**${status.state}**`, ...jobs].join('\n'));
  if (
    status.state !== 'running' &&
    workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.state) !== undefined
  ) {
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.state, value: status.state }]);
  }
}

/** A child job's search attributes, summary and details, when the pipeline has attributes. */
function childWebUi(input: PipelineInput, job: JobInput) {
  const facts = { ...job, job: job.workflowJobId, state: 'queued' };
  const hasAttributes = workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.state) !== undefined;
  return {
    ...(hasAttributes ? { typedSearchAttributes: searchAttributesFor(facts) } : {}),
    staticSummary: runSummary(facts),
    staticDetails: runDetails({ ...job, event: input.event, publicUrl: input.publicUrl }),
  };
}

const DEFAULT_FORGE_STATUS_DEADLINE_MS = 6 * 60 * 60_000;

/** What a job's state looks like on the forge, and the words next to it. */
function reportedState(s: PipelineJobState): ReportedState {
  if (s === 'waiting' || s === 'running') return 'pending';
  return s;
}

export async function PipelineWorkflow(input: PipelineInput): Promise<PipelineOutcome> {
  const workflowId = workflowInfo().workflowId;
  const status: PipelineStatus = { state: 'running', jobs: {} };
  setHandler(pipelineStatusQuery, () => status);
  // Bookkeeping must happen even while the pipeline is being cancelled.
  const record = <T>(fn: () => Promise<T>): Promise<T> => CancellationScope.nonCancellable(fn);

  // Forge statuses: one chain, so updates of this commit reach the forge in order; each is
  // retried until the deadline, then recorded and given up without changing the result. At
  // most 30 s apart: a forge that is back gets its statuses soon, and a retry adds no history.
  const forge = proxyActivities<ReturnType<typeof createForgeStatusActivities>>({
    startToCloseTimeout: '30 seconds',
    scheduleToCloseTimeout: input.forgeStatusDeadlineMs ?? DEFAULT_FORGE_STATUS_DEADLINE_MS,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });
  let statuses: Promise<void> = Promise.resolve();
  const checkRuns = new Map<string, number>();
  const report = (
    job: string | undefined,
    state: ReportedState,
    description: string,
    jobId?: string,
  ): void => {
    if (input.source === 'manual') return;
    statuses = statuses.then(() =>
      record(async () => {
        try {
          const r = await forge.reportForgeStatus.executeWithOptions(
            { summary: `report ${job ?? 'pipeline'} ${state} to ${input.source}` },
            [
              {
                forge: input.source as 'forgejo' | 'github',
                repoUrl: input.repoUrl,
                commitSha: input.commitSha,
                ...(job ? { job } : {}),
                ...(jobId ? { jobId } : {}),
                pipelineId: input.pipelineId,
                event: input.event,
                state,
                description,
                ...(job && checkRuns.has(job) ? { checkRunId: checkRuns.get(job) } : {}),
              },
            ],
          );
          if (job && r.checkRunId !== undefined) checkRuns.set(job, r.checkRunId);
        } catch (err) {
          log.warn('reporting a status to the forge failed; the result stands', {
            job: job ?? '(pipeline)',
            state,
            error: messageOf(err),
          });
        }
      }),
    );
  };
  const finish = async (state: Exclude<PipelineState, 'running'>, message?: string): Promise<void> => {
    await record(() => db.finalizePipeline(input.pipelineId, state, message));
    status.state = state;
    showPipeline(status);
  };

  // Recorded even when a cancel is already pending, so there is a row to finalize.
  await record(() => db.recordPipeline(input, workflowId));
  const cancelled = () => CancellationScope.current().consideredCancelled;

  let plan: PipelinePlan;
  try {
    plan = await planning.loadPipelinePlan({
      source: input.source,
      repoUrl: input.repoUrl,
      commitSha: input.commitSha,
      ref: input.ref,
      event: input.event,
      label: input.label ?? 'local',
      ...(input.dispatch ? { dispatch: input.dispatch } : {}),
      ...(input.gitProtocols ? { gitProtocols: input.gitProtocols } : {}),
      ...(input.beforeSha ? { beforeSha: input.beforeSha } : {}),
    });
  } catch (err) {
    if (isCancellation(err)) {
      await finish('cancelled', 'cancelled before its jobs were planned');
      throw err;
    }
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const user = cause instanceof ApplicationFailure && USER_ERRORS.has(cause.type ?? '');
    const message = messageOf(err);
    // No job to show it on: one status for the pipeline, so the commit does not stay blank.
    report(undefined, 'error', message.split('\n')[0]);
    await statuses;
    await finish(user ? 'failure' : 'error', message);
    throw ApplicationFailure.nonRetryable(message, user ? 'PipelineFailed' : 'PipelineErrored');
  }

  // A newer push to the branch makes older runs of it pointless, unless the workflow opts out.
  // A pipeline cancelled itself supersedes nothing: the newer one that cancelled it does that.
  if (plan.cancelSuperseded && input.event === 'push' && input.ref && !cancelled()) {
    for (const older of await record(() => db.supersededPipelines(input.pipelineId))) {
      if (cancelled()) break;
      try {
        await getExternalWorkflowHandle(older).cancel();
        log.info('cancelled superseded pipeline', { older });
      } catch (err) {
        // Already finished: nothing to cancel.
        log.info('superseded pipeline was not cancelled', { older, error: messageOf(err) });
      }
    }
  }

  const jobs = new Map<string, PlannedJob>(plan.jobs.map((j) => [j.name, j]));
  const state = new Map<string, PipelineJobState>();
  const initial = plan.jobs.map((j) => {
    const reused = input.reuse?.[j.name];
    const s: PipelineJobState = reused ? 'success' : j.skipReason ? 'skipped' : 'waiting';
    state.set(j.name, s);
    status.jobs[j.name] = { state: s, ...(reused ? { jobId: reused } : {}) };
    return {
      name: j.name,
      needs: j.needs,
      state: s,
      ...(reused
        ? { jobId: reused, message: `succeeded in pipeline ${input.rerunOf ?? ''}; not run again` }
        : {}),
      ...(j.skipReason ? { message: j.skipReason } : {}),
    };
  });
  // Non-cancellable like every write below: a cancel landing between planning and the first
  // job must still leave each job and the pipeline in a final state (schedule() sees it).
  await record(() => db.recordPipelineJobs(input.pipelineId, initial));
  showPipeline(status);
  for (const j of initial) report(j.name, reportedState(j.state), j.message ?? 'waiting', j.jobId);

  /** Failed jobs with `continue-on-error`: passed, for what needs them and for the result. */
  const tolerated = new Set<string>();
  const setState = async (
    name: string,
    s: PipelineJobState,
    extra: { jobId?: string; message?: string } = {},
  ) => {
    state.set(name, s);
    status.jobs[name] = { ...status.jobs[name], state: s, ...(extra.jobId ? { jobId: extra.jobId } : {}) };
    await record(() => db.updatePipelineJob(input.pipelineId, name, { state: s, ...extra }));
    showPipeline(status);
    report(
      name,
      // As on GitHub, a tolerated failure does not make the commit red; its description says it failed.
      tolerated.has(name) ? 'success' : reportedState(s),
      s === 'running' ? 'running' : s === 'success' ? 'passed' : (extra.message ?? s),
      status.jobs[name].jobId,
    );
  };

  const passed = (name: string): boolean => state.get(name) === 'success' || tolerated.has(name);
  /** Each running job's scope, so fail-fast can cancel one instance without the pipeline. */
  const scopes = new Map<string, CancellationScope>();
  /** Instances cancelled by fail-fast → the instance whose failure did it. */
  const failedFast = new Map<string, string>();

  /** fail-fast: the other instances of the failed one's matrix stop (running) or never start. */
  const cancelSiblings = async (failed: PlannedJob): Promise<void> => {
    const group = failed.matrix?.group;
    for (const [name, sibling] of jobs) {
      if (name === failed.name || sibling.matrix?.group !== group) continue;
      if (state.get(name) === 'waiting') {
        await setState(name, 'cancelled', { message: `fail-fast: ${failed.name} failed` });
      } else if (state.get(name) === 'running' && !failedFast.has(name)) {
        failedFast.set(name, failed.name);
        scopes.get(name)?.cancel();
      }
    }
  };

  /** Outputs of the Actions jobs that succeeded, for the jobs that need them. */
  const outputsOf = new Map<string, Record<string, string>>();
  const runJob = async (job: PlannedJob): Promise<void> => {
    const jobId = uuid4();
    await setState(job.name, 'running', { jobId });
    const jobInput: JobInput = {
      jobId,
      source: input.source,
      repoUrl: input.repoUrl,
      commitSha: input.commitSha,
      ref: input.ref,
      label: job.runsOn,
      timeoutMs: job.timeoutMs ?? input.timeoutMs,
      bootTimeoutMs: input.bootTimeoutMs,
      maxMachineAttempts: input.maxMachineAttempts,
      ...(job.steps ? { steps: job.steps } : {}),
      env: job.env,
      ...(job.secrets?.length ? { secrets: job.secrets } : {}),
      ...(job.artifacts ? { artifacts: job.artifacts } : {}),
      ...(job.actions ? { actions: job.actions } : {}),
      ...(job.actions && job.needs.length > 0
        ? { needsOutputs: Object.fromEntries(job.needs.map((n) => [n, outputsOf.get(n) ?? {}])) }
        : {}),
      pipelineId: input.pipelineId,
      workflowJobId: job.name,
    };
    try {
      const outcome = await executeChild(JobWorkflow, {
        workflowId: pipelineJobWorkflowId(workflowId, job.name),
        args: [jobInput],
        // Wait until a cancelled job destroyed its machine; never leave a job behind the pipeline.
        cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        ...childWebUi(input, jobInput),
      });
      if (outcome.outputs) outputsOf.set(job.name, outcome.outputs);
      await setState(job.name, 'success');
    } catch (err) {
      const s = jobStateOf(err);
      const by = failedFast.get(job.name);
      if (s === 'cancelled' && by !== undefined) {
        await setState(job.name, s, { message: `fail-fast: ${by} failed` });
        return;
      }
      // Only the job's own failure is tolerated; an error (no machine, ...) is Solstice's.
      if (s === 'failure' && job.continueOnError) tolerated.add(job.name);
      await setState(job.name, s, {
        message: tolerated.has(job.name)
          ? `${messageOf(err)}; continue-on-error: the pipeline goes on`
          : messageOf(err),
      });
      if ((s === 'failure' || s === 'error') && !tolerated.has(job.name) && job.matrix?.failFast)
        await cancelSiblings(job);
    }
  };

  const running = new Map<string, Promise<void>>();
  /** Skips what can no longer run and starts what is ready; repeats until nothing changes. */
  const schedule = async (): Promise<void> => {
    for (let changed = true; changed;) {
      changed = false;
      for (const [name, job] of jobs) {
        if (state.get(name) !== 'waiting') continue;
        if (cancelled()) {
          await setState(name, 'cancelled', {
            message: 'the pipeline was cancelled before this job started',
          });
          changed = true;
          continue;
        }
        const blocked = job.needs.find((n) => !passed(n) && DONE.includes(state.get(n)!));
        if (blocked) {
          await setState(name, 'skipped', { message: `needs ${blocked}, which ended ${state.get(blocked)}` });
          changed = true;
          continue;
        }
        const max = job.matrix?.maxParallel;
        if (
          max !== undefined &&
          [...running.keys()].filter((n) => jobs.get(n)?.matrix?.group === job.matrix?.group).length >= max
        )
          continue; // started when an instance of its matrix ends
        if (job.needs.every(passed)) {
          const scope = new CancellationScope();
          scopes.set(name, scope);
          running.set(
            name,
            scope
              .run(() => runJob(job))
              .finally(() => {
                running.delete(name);
                scopes.delete(name);
              }),
          );
          changed = true;
        }
      }
    }
  };

  await schedule();
  while (running.size > 0) {
    await Promise.race(running.values());
    await schedule();
  }

  const states = [...state].filter(([n]) => !tolerated.has(n)).map(([, s]) => s);
  const outcome: PipelineOutcome = {
    state: aggregateState(states, cancelled()),
    jobs: Object.fromEntries(state),
  };
  const failed = [...state]
    .filter(([n, s]) => (s === 'failure' || s === 'error') && !tolerated.has(n))
    .map(([n]) => n);
  if (failed.length > 0) outcome.message = `failed: ${failed.join(', ')}`;
  // The pipeline ends once the forge has every job's final state (or gave up on it).
  await statuses;
  await finish(outcome.state, outcome.message);

  // A CancelledFailure makes Temporal record the run as Canceled rather than Failed.
  if (outcome.state === 'cancelled' && cancelled()) throw new CancelledFailure('pipeline cancelled');
  if (outcome.state !== 'success') {
    throw ApplicationFailure.nonRetryable(
      outcome.message ?? outcome.state,
      outcome.state === 'failure'
        ? 'PipelineFailed'
        : outcome.state === 'error'
          ? 'PipelineErrored'
          : 'PipelineCancelled',
      outcome,
    );
  }
  return outcome;
}
