/**
 * The workflows in a fake world: every activity JobWorkflow and PipelineWorkflow call, as plain
 * functions that log what they were asked and answer as the scenario says, and a runner that
 * "connects" and "finishes" by sending the signals runner-api would. A worker with these on the
 * run's dev server tests the workflows' own decisions (a fresh machine, giving up, cleaning up on
 * cancellation, skipping, superseding) in seconds, with no machine and no database.
 *
 * The scenarios below are shared by the decision tests (which assert what the workflows did)
 * and the history recorder of the replay test (which keeps what they did).
 */
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Worker,
  type NativeConnection,
  type WorkflowBundle,
} from '@temporalio/worker';
import type { createActivities } from '../../activities';
import type { createForgeStatusActivities } from '../../activities/forge-status';
import { startWorkflow } from '../../ingress/start-workflow';
import type { JobStep } from '../../model/job-file';
import {
  pipelineJobWorkflowId,
  type JobInput,
  type PipelineInput,
  type PipelinePlan,
  type PlannedJob,
} from '../../model/domain';
import {
  poolKickSignal,
  runnerFinishedSignal,
  runnerStartedSignal,
  statusQuery,
} from '../../workflows/signals';
import { searchAttributesFor } from '../../workflows/web-ui';

type Activities = ReturnType<typeof createActivities> & ReturnType<typeof createForgeStatusActivities>;
/** Every activity the workflows call; a renamed or reshaped one fails the compile here. */
type WorkflowActivities = Pick<
  Activities,
  | 'recordJob'
  | 'requestLease'
  | 'checkLease'
  | 'provisionMachine'
  | 'checkMachineContact'
  | 'recordMachineLost'
  | 'destroyMachine'
  | 'releaseLease'
  | 'finalizeJob'
  | 'reportForgeStatus'
  | 'recordPipeline'
  | 'loadPipelinePlan'
  | 'recordPipelineJobs'
  | 'updatePipelineJob'
  | 'collectGarbage'
  | 'finalizePipeline'
  | 'supersededPipelines'
  | 'reconcilePool'
>;

/**
 * What the machine's runner does: never connect, connect and never finish (alive), connect and
 * then go silent for good (its machine died), or run to an exit code.
 */
export type RunnerBehaviour = 'silent' | 'hangs' | 'dies' | { exitCode: number };

/** The liveness window the world's checkMachineContact reports. */
const LIVENESS_MS = 1000;

export interface WorldOptions {
  /** Per machine; default: the runner connects and exits 0. */
  runner?: (m: { workflowId: string; attempt: number }) => RunnerBehaviour;
  /** The pipeline plan at a repository; default: one job `build`. */
  plan?: (repoUrl: string) => PipelinePlan;
  /** Workflow ids the pipeline `pipelineId` supersedes; default: none. */
  superseded?: (pipelineId: string) => string[];
  /** How long destroyMachine takes (it then logs `destroyed #<attempt>`); default: at once. */
  destroyMs?: number;
  /** The machine slot is never granted (the job stays queued until cancelled). */
  leaseWaits?: boolean;
  /** recordPipelineJobs (between planning and the first job) returns only once this settles. */
  recordJobsGate?: Promise<void>;
  /** provisionMachine returns only once its workflow has been asked to cancel (a slow boot). */
  bootsUntilCancelled?: boolean;
}

export interface Call {
  workflowId: string;
  /** The activity and what distinguishes this call, e.g. `provisionMachine #2`. */
  what: string;
}

export interface World {
  activities: WorkflowActivities;
  calls: Call[];
  /** What the activities of one workflow run did, in order. */
  sequence(workflowId: string): string[];
}

/** One step that passes; what the runner would run does not matter to the workflows. */
const STEPS: JobStep[] = [{ name: 'test', run: 'true', continueOnError: false }];

function plannedJob(name: string, needs: string[] = [], more: Partial<PlannedJob> = {}): PlannedJob {
  return {
    name,
    needs,
    runsOn: 'local',
    steps: STEPS,
    env: {},
    ...more,
  };
}

/** A pipeline of `jobs` whose runners behave as `runner(job name)` says. */
function pipelineScenario(env: WorldEnv, jobs: PlannedJob[], runner: (job: string) => RunnerBehaviour) {
  return inWorld(
    env,
    {
      plan: () => ({ definition: '.forgejo/workflows/ci.yml', cancelSuperseded: false, jobs }),
      runner: ({ workflowId }) => runner(workflowId.slice(workflowId.lastIndexOf('/job/') + 5)),
    },
    async (_w, queue) => {
      const handle = await startPipeline(env.client, queue, pipelineInput());
      const end = await ended(handle);
      const histories: Recorded = { '': handle.workflowId };
      return { histories, workflowId: handle.workflowId, end };
    },
  );
}

const onePlan: PipelinePlan = {
  definition: '.solstice/workflow.kdl',
  cancelSuperseded: false,
  jobs: [plannedJob('build')],
};

/** The run that called the activity running now. */
function callerId(): string {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new Error('a workflow activity ran without a workflow');
  return run.workflowId;
}

function createWorld(client: Client, opts: WorldOptions = {}): World {
  const calls: Call[] = [];
  const log = (what: string): void => {
    calls.push({ workflowId: callerId(), what });
  };
  const activities: WorkflowActivities = {
    async recordJob() {
      log('recordJob');
    },
    async requestLease() {
      log('requestLease');
      if (opts.leaseWaits) return { position: 1 };
      return { grant: { hostId: 'fake-host', taskQueue: Context.current().info.taskQueue } };
    },
    // Periodic looks are not logged: how many there are depends on timing, not on decisions.
    async checkLease() {
      if (opts.leaseWaits) return { position: 1 };
      return { grant: { hostId: 'fake-host', taskQueue: Context.current().info.taskQueue } };
    },
    async checkMachineContact(req) {
      const behaviour = (opts.runner ?? (() => ({ exitCode: 0 })))({
        workflowId: callerId(),
        attempt: req.attempt,
      });
      return { silentMs: behaviour === 'dies' ? LIVENESS_MS : 0, livenessMs: LIVENESS_MS, hostTtlMs: 60_000 };
    },
    async recordMachineLost(req) {
      log(`recordMachineLost #${req.attempt}: ${req.message}`);
    },
    async provisionMachine(req) {
      log(`provisionMachine #${req.attempt}`);
      const workflowId = callerId();
      if (opts.bootsUntilCancelled) await cancelRequested(client.workflow.getHandle(workflowId));
      const behaviour = (opts.runner ?? (() => ({ exitCode: 0 })))({ workflowId, attempt: req.attempt });
      // As runner-api would: the signals carry the attempt their machine was made for.
      if (behaviour !== 'silent') {
        const handle = client.workflow.getHandle(workflowId);
        await handle.signal(runnerStartedSignal, { attempt: req.attempt, hostname: `fake-${req.attempt}` });
        if (behaviour !== 'hangs' && behaviour !== 'dies') {
          await handle.signal(runnerFinishedSignal, {
            attempt: req.attempt,
            reason: 'EXITED',
            exitCode: behaviour.exitCode,
            message: '',
            durationMs: 1,
          });
        }
      }
      return {
        handle: {
          machineId: `${req.jobId}-${req.attempt}`,
          provider: 'fake',
          hostId: 'fake-host',
          details: { attempt: req.attempt },
        },
        hostTaskQueue: Context.current().info.taskQueue,
      };
    },
    async destroyMachine(req) {
      const attempt = String(req.ref.handle.details.attempt);
      log(`destroyMachine #${attempt}${req.keepConsole ? ' keepConsole' : ''}`);
      if (opts.destroyMs) {
        await new Promise((r) => setTimeout(r, opts.destroyMs));
        log(`destroyed #${attempt}`);
      }
    },
    async releaseLease() {
      log('releaseLease');
    },
    async finalizeJob(_jobId, outcome) {
      log(`finalizeJob ${outcome.state}`);
    },
    async reportForgeStatus(u) {
      log(`reportForgeStatus ${u.state}`);
      return { checkRunId: 7 };
    },
    async recordPipeline() {
      log('recordPipeline');
    },
    async loadPipelinePlan(req) {
      log('loadPipelinePlan');
      return opts.plan ? opts.plan(req.repoUrl) : onePlan;
    },
    async recordPipelineJobs(_pipelineId, jobs) {
      log(`recordPipelineJobs ${jobs.map((j) => `${j.name}:${j.state}`).join(' ')}`);
      await opts.recordJobsGate;
    },
    async updatePipelineJob(_pipelineId, name, change) {
      log(`updatePipelineJob ${name} ${change.state}`);
    },
    async finalizePipeline(_pipelineId, state) {
      log(`finalizePipeline ${state}`);
    },
    async collectGarbage() {
      log('collectGarbage');
      return { logs: 1, artifacts: 0, pipelines: 0, jobs: 0, blobs: 2, sessions: 0 };
    },
    async supersededPipelines(pipelineId) {
      log('supersededPipelines');
      return opts.superseded?.(pipelineId) ?? [];
    },
    // The first look boots nothing; a later one finds the pool unconfigured and empty, so the run ends.
    async reconcilePool() {
      log('reconcilePool');
      const looks = calls.filter((c) => c.workflowId === callerId() && c.what === 'reconcilePool').length;
      return {
        labels: [{ label: 'local', idle: 1, booting: 0, reserved: 0, minIdle: 1, maxIdle: 1 }],
        booted: 0,
        destroyed: [],
        empty: looks > 1,
      };
    },
  };
  return {
    activities,
    calls,
    sequence: (workflowId) => calls.filter((c) => c.workflowId === workflowId).map((c) => c.what),
  };
}

/** Bundled once per test file: each scenario's worker reuses it. */
export function bundleWorkflows(): Promise<WorkflowBundle> {
  return bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    // webpack's module report on every run says nothing a failing test needs.
    logger: new DefaultLogger('WARN'),
  });
}

export interface WorldEnv {
  client: Client;
  connection: NativeConnection;
  bundle: WorkflowBundle;
}

/** A worker on a task queue of its own with the world's activities, for as long as `fn` runs. */
async function inWorld<T>(
  env: WorldEnv,
  opts: WorldOptions,
  fn: (world: World, taskQueue: string) => Promise<T>,
): Promise<T & { world: World }> {
  const world = createWorld(env.client, opts);
  const taskQueue = `decisions-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.connection,
    taskQueue,
    workflowBundle: env.bundle,
    activities: world.activities,
    // Heartbeats (and so cancellations) reach the server at once rather than every 24 s.
    maxHeartbeatThrottleInterval: '100ms',
  });
  const result = await worker.runUntil(fn(world, taskQueue));
  return { ...result, world };
}

/** How a run ended: its result, or the failure `result()` threw. */
export type Ended<T> = { ok: T } | { failed: WorkflowFailedError };

async function ended<T>(handle: WorkflowHandle): Promise<Ended<T>> {
  try {
    return { ok: (await handle.result()) as T };
  } catch (err) {
    if (err instanceof WorkflowFailedError) return { failed: err };
    throw err;
  }
}

function jobInput(over: Partial<JobInput> = {}): JobInput {
  return {
    jobId: randomUUID(),
    source: 'manual',
    repoUrl: 'https://forge.example/acme/app.git',
    commitSha: 'c0ffee'.padEnd(40, '0'),
    ref: 'refs/heads/main',
    label: 'local',
    timeoutMs: 60_000,
    bootTimeoutMs: 60_000,
    maxMachineAttempts: 2,
    steps: STEPS,
    ...over,
  };
}

function pipelineInput(over: Partial<PipelineInput> = {}): PipelineInput {
  return {
    pipelineId: randomUUID(),
    source: 'manual',
    event: 'push',
    repoUrl: 'https://forge.example/acme/app.git',
    commitSha: 'c0ffee'.padEnd(40, '0'),
    ref: 'refs/heads/main',
    timeoutMs: 60_000,
    bootTimeoutMs: 60_000,
    maxMachineAttempts: 2,
    ...over,
  };
}

/** Started as ingress does: with the Web UI search attributes, so the state upserts run too. */
function startJob(client: Client, taskQueue: string, input: JobInput, workflowId = `job/${input.jobId}`) {
  return startWorkflow(client, 'JobWorkflow', {
    taskQueue,
    workflowId,
    args: [input],
    typedSearchAttributes: searchAttributesFor({ ...input, job: 'job', state: 'queued' }),
  });
}

function startPipeline(client: Client, taskQueue: string, input: PipelineInput) {
  return startWorkflow(client, 'PipelineWorkflow', {
    taskQueue,
    workflowId: `pipeline/${input.pipelineId}`,
    args: [input],
    typedSearchAttributes: searchAttributesFor({ ...input, state: 'running' }),
  });
}

/** Polls until `ok` holds (the workflows move on their own time, in real time on the dev server). */
async function until(what: string, ok: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Until the run's history records a cancel request (what a boot that outlasts it sees). */
async function cancelRequested(handle: WorkflowHandle): Promise<void> {
  await until('the cancel request', async () => {
    const history = await handle.fetchHistory();
    return (history.events ?? []).some((e) => e.workflowExecutionCancelRequestedEventAttributes);
  });
}

/** The job waits for its runner: the boot timer is started, so the machine is recorded in the run. */
async function booting(handle: WorkflowHandle): Promise<boolean> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).some((e) => e.timerStartedEventAttributes);
}

async function running(handle: WorkflowHandle): Promise<boolean> {
  return (await handle.query(statusQuery)).state === 'running';
}

/**
 * The runs a scenario leaves to record, by the suffix of their history file
 * (`<scenario>.<suffix>.json`; the empty suffix: `<scenario>.json`).
 */
export type Recorded = Record<string, string>;

/**
 * One bare job in the world: started with `input`, cancelled once `cancelWhen` holds (if given),
 * followed to its end.
 */
function jobScenario(
  env: WorldEnv,
  opts: WorldOptions,
  input: JobInput,
  cancelWhen?: { what: string; ready: (handle: WorkflowHandle, world: World) => Promise<boolean> | boolean },
) {
  return inWorld(env, opts, async (world, queue) => {
    const handle = await startJob(env.client, queue, input);
    if (cancelWhen) {
      await until(cancelWhen.what, () => cancelWhen.ready(handle, world));
      await handle.cancel();
    }
    const histories: Recorded = { '': handle.workflowId };
    return { histories, workflowId: handle.workflowId, end: await ended(handle) };
  });
}

/** Scenarios by the name their recorded histories are filed under (tests/fixtures/histories). */
export const scenarios = {
  /**
   * The first machine's runner never connects: destroyed keeping its console, a second one runs
   * the job. From GitHub, so the forge status reports are in its history too.
   */
  'job-boot-timeout-fresh-machine': (env: WorldEnv) =>
    jobScenario(
      env,
      { runner: ({ attempt }) => (attempt === 1 ? 'silent' : { exitCode: 0 }) },
      jobInput({ source: 'github', bootTimeoutMs: 1500 }),
    ),

  /**
   * The runner finishes and its machine takes a while to go: the log is stored (finalizeJob)
   * while the machine is destroyed, the slot released once it is gone.
   */
  'job-finalized-beside-destroy': (env: WorldEnv) => jobScenario(env, { destroyMs: 1500 }, jobInput()),

  /** The same slow destroy after a lost machine: its runner may still write, so the log waits. */
  'job-lost-finalized-after-destroy': (env: WorldEnv) =>
    jobScenario(env, { runner: () => 'dies', destroyMs: 1500 }, jobInput({ maxMachineAttempts: 1 })),

  /** No machine's runner ever connects: after the last attempt the job ends `error`. */
  'job-attempts-exhausted': (env: WorldEnv) =>
    jobScenario(env, { runner: () => 'silent' }, jobInput({ bootTimeoutMs: 1000, maxMachineAttempts: 2 })),

  /** Cancelled while waiting for a machine slot: no machine to destroy, the wait is given up. */
  'job-cancelled-queued': (env: WorldEnv) =>
    jobScenario(env, { leaseWaits: true }, jobInput(), {
      what: 'the job waits for a slot',
      ready: (handle, world) => world.sequence(handle.workflowId).includes('requestLease'),
    }),

  /**
   * The first machine dies mid-job (its runner goes silent for the liveness window): destroyed,
   * and a fresh one runs the job.
   */
  'job-machine-lost-fresh-machine': (env: WorldEnv) =>
    jobScenario(env, { runner: ({ attempt }) => (attempt === 1 ? 'dies' : { exitCode: 0 }) }, jobInput()),

  /** Every machine dies mid-job: after the last attempt the job ends `error`, never `failure`. */
  'job-machine-lost-exhausted': (env: WorldEnv) =>
    jobScenario(env, { runner: () => 'dies' }, jobInput({ maxMachineAttempts: 2 })),

  /** Cancelled while its machine boots: the machine is destroyed and the slot released. */
  'job-cancelled-booting': (env: WorldEnv) =>
    jobScenario(env, { runner: () => 'silent' }, jobInput(), { what: 'the machine boots', ready: booting }),

  /**
   * Cancelled while provisionMachine itself runs (the boot outlasts the cancel): the machine it
   * returns afterwards is still destroyed.
   */
  'job-cancelled-provisioning': (env: WorldEnv) =>
    jobScenario(env, { runner: () => 'silent', bootsUntilCancelled: true }, jobInput(), {
      what: 'the machine is being provisioned',
      ready: (handle, world) => world.sequence(handle.workflowId).includes('provisionMachine #1'),
    }),

  /** Cancelled while its runner runs the steps: the machine is destroyed and the slot released. */
  'job-cancelled-running': (env: WorldEnv) =>
    jobScenario(env, { runner: () => 'hangs' }, jobInput(), { what: 'the job runs', ready: running }),

  /** `lint` fails: what needs it (directly or not) is skipped, the independent `docs` still runs. */
  'pipeline-needs-failure-skips': (env: WorldEnv) =>
    inWorld(
      env,
      {
        plan: () => ({
          definition: '.solstice/workflow.kdl',
          cancelSuperseded: false,
          jobs: [
            plannedJob('lint'),
            plannedJob('test', ['lint']),
            plannedJob('deploy', ['test']),
            plannedJob('docs'),
          ],
        }),
        runner: ({ workflowId }) => (workflowId.endsWith('/job/lint') ? { exitCode: 1 } : { exitCode: 0 }),
      },
      async (_w, queue) => {
        const handle = await startPipeline(env.client, queue, pipelineInput());
        const end = await ended(handle);
        const histories: Recorded = { '': handle.workflowId };
        for (const j of ['lint', 'docs']) histories[`job-${j}`] = pipelineJobWorkflowId(handle.workflowId, j);
        return { histories, workflowId: handle.workflowId, end };
      },
    ),

  /**
   * Cancelled between planning and its first job (while its jobs are being recorded): every
   * job and the pipeline still end `cancelled` in the database.
   */
  'pipeline-cancelled-after-planning': (env: WorldEnv) => {
    let release = (): void => undefined;
    const recordJobsGate = new Promise<void>((r) => (release = r));
    return inWorld(env, { recordJobsGate }, async (world, queue) => {
      const handle = await startPipeline(env.client, queue, pipelineInput());
      await until('the jobs are being recorded', () =>
        world.sequence(handle.workflowId).some((s) => s.startsWith('recordPipelineJobs')),
      );
      await handle.cancel();
      await until('the cancel reached the run', async () => {
        const history = await handle.fetchHistory();
        return (history.events ?? []).some((e) => e.workflowExecutionCancelRequestedEventAttributes);
      });
      release();
      const end = await ended(handle);
      return { histories: { '': handle.workflowId } as Recorded, workflowId: handle.workflowId, end };
    });
  },

  /** A newer push to the branch cancels the older pipeline, whose running job is cleaned up. */
  'pipeline-superseded': (env: WorldEnv) => {
    const older = pipelineInput();
    const olderId = `pipeline/${older.pipelineId}`;
    return inWorld(
      env,
      {
        plan: () => ({
          definition: '.solstice/workflow.kdl',
          cancelSuperseded: true,
          jobs: [plannedJob('build')],
        }),
        // The older pipeline's job runs until cancelled; the newer one's passes.
        runner: ({ workflowId }) => (workflowId.startsWith(olderId) ? 'hangs' : { exitCode: 0 }),
        superseded: (pipelineId) => (pipelineId === older.pipelineId ? [] : [olderId]),
      },
      async (_w, queue) => {
        const first = await startPipeline(env.client, queue, older);
        const olderJob = env.client.workflow.getHandle(pipelineJobWorkflowId(olderId, 'build'));
        await until('the older pipeline runs its job', async () => {
          try {
            return await running(olderJob);
          } catch {
            return false; // not started yet
          }
        });
        const second = await startPipeline(env.client, queue, pipelineInput());
        const [olderEnd, newerEnd] = await Promise.all([ended(first), ended(second)]);
        return {
          histories: { '': first.workflowId, 'job-build': olderJob.workflowId, newer: second.workflowId },
          workflowId: first.workflowId,
          newerId: second.workflowId,
          end: olderEnd,
          newerEnd,
        };
      },
    );
  },

  /**
   * An Actions matrix of three instances, `max-parallel: 2`, fail-fast: `test-1` fails while
   * `test-2` runs and `test-3` waits for a slot; `test-2` is cancelled (its machine destroyed),
   * `test-3` never starts, and `report`, which needs the matrix, is skipped.
   */
  'pipeline-matrix-fail-fast': (env: WorldEnv) => {
    const matrix = { group: 'ci/test', failFast: true, maxParallel: 2 };
    return pipelineScenario(
      env,
      [
        plannedJob('test-1', [], { matrix }),
        plannedJob('test-2', [], { matrix }),
        plannedJob('test-3', [], { matrix }),
        plannedJob('report', ['test-1', 'test-2', 'test-3']),
      ],
      (job) => (job === 'test-1' ? { exitCode: 1 } : 'hangs'),
    );
  },

  /**
   * `max-parallel: 1` without fail-fast: the instances run one after another, and the failure of
   * the first does not stop the others.
   */
  'pipeline-matrix-max-parallel': (env: WorldEnv) => {
    const matrix = { group: 'ci/test', failFast: false, maxParallel: 1 };
    return pipelineScenario(
      env,
      ['a', 'b', 'c'].map((i) => plannedJob(`test-${i}`, [], { matrix })),
      (job) => (job === 'test-a' ? { exitCode: 1 } : { exitCode: 0 }),
    );
  },

  /**
   * A job with `continue-on-error: true` fails: `deploy`, which needs it, still runs, and the
   * pipeline succeeds.
   */
  'pipeline-continue-on-error': (env: WorldEnv) =>
    pipelineScenario(
      env,
      [plannedJob('flaky', [], { continueOnError: true }), plannedJob('deploy', ['flaky'])],
      (job) => (job === 'flaky' ? { exitCode: 1 } : { exitCode: 0 }),
    ),

  /** A host's pool owner: one look, then a claim's kick makes it look again at once (not after its timer). */
  'pool-kick': (env: WorldEnv) =>
    inWorld(env, {}, async (world, queue) => {
      const handle = await startWorkflow(env.client, 'PoolWorkflow', {
        taskQueue: queue,
        workflowId: `pool/fake-host-${randomUUID()}`,
        args: [{ hostId: 'fake-host', hostTaskQueue: queue, intervalMs: 3_600_000 }],
      });
      while (!world.sequence(handle.workflowId).includes('reconcilePool'))
        await new Promise((r) => setTimeout(r, 20));
      await handle.signal(poolKickSignal);
      const histories: Recorded = { '': handle.workflowId };
      return { histories, workflowId: handle.workflowId, end: await ended(handle) };
    }),
  /** One scheduled retention sweep: its single activity with the policy the schedule carries. */
  'retention-sweep': (env: WorldEnv) =>
    inWorld(env, {}, async (_world, queue) => {
      const handle = await env.client.workflow.start('RetentionWorkflow', {
        taskQueue: queue,
        workflowId: `solstice-gc/${randomUUID()}`,
        args: [{ logs: { maxAgeMs: 30 * 86_400_000 } }],
      });
      const histories: Recorded = { '': handle.workflowId };
      return { histories, workflowId: handle.workflowId, end: await ended(handle) };
    }),
};
