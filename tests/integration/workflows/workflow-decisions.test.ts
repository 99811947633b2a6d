/**
 * The decisions JobWorkflow and PipelineWorkflow make, with every activity mocked
 * (tests/support/workflow-world.ts): the workflow code is the real bundle, on the run's Temporal
 * dev server, so what is asserted is what a worker would do: which activities it called, in
 * which order, and how the run ended.
 *
 * The environment is TestWorkflowEnvironment.createFromExistingServer on the dev server the
 * integration run already has (tests/support/global-setup.ts): it is started from the tools'
 * Temporal CLI with our search attributes registered, so a second server per file would only
 * cost seconds and memory. Time skipping needs the SDK's downloaded test server, which we do not
 * have offline; the timeouts that matter come in through the workflow inputs, short.
 */
import { ApplicationFailure, CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { pipelineJobWorkflowId } from '../../../model/domain';
import { createLogger } from '../../../platform/logger';
import { installTemporalRuntime } from '../../../platform/temporal';
import {
  bundleWorkflows,
  scenarios,
  type Ended,
  type World,
  type WorldEnv,
} from '../../support/workflow-world';

let testEnv: TestWorkflowEnvironment;
let env: WorldEnv;

beforeAll(async () => {
  const log = createLogger('test');
  log.level = 'warn';
  installTemporalRuntime(log);
  const address = process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('SOLSTICE_TEST_TEMPORAL_ADDRESS is unset: run through jest (global setup)');
  testEnv = await TestWorkflowEnvironment.createFromExistingServer({ address });
  env = { client: testEnv.client, connection: testEnv.nativeConnection, bundle: await bundleWorkflows() };
});

afterAll(async () => {
  await testEnv?.teardown();
});

/** A job cancelled once it had a machine: the machine is destroyed, then its slot released. */
const CANCELLED_WITH_MACHINE = [
  'recordJob',
  'requestLease',
  'provisionMachine #1',
  'destroyMachine #1',
  'releaseLease',
  'finalizeJob cancelled',
];

/**
 * A job whose runner finished stores its log beside its machine's destroy (the two start
 * together, in either order): the sequence with finalizeJob moved after the release, so the
 * order that is decided (destroy, then release) is what the tests compare.
 */
function finalizeLast(sequence: string[]): string[] {
  const finalize = sequence.filter((s) => s.startsWith('finalizeJob'));
  return [...sequence.filter((s) => !s.startsWith('finalizeJob')), ...finalize];
}

function failure(end: Ended<unknown>): unknown {
  if (!('failed' in end)) throw new Error(`the run succeeded: ${JSON.stringify(end.ok)}`);
  return end.failed.cause;
}

function applicationFailure(end: Ended<unknown>): ApplicationFailure {
  const cause = failure(end);
  if (!(cause instanceof ApplicationFailure)) throw new Error(`not an ApplicationFailure: ${String(cause)}`);
  return cause;
}

test('a machine whose runner never connects is destroyed (console kept) and a fresh one runs the job', async () => {
  const { world, workflowId, end } = await scenarios['job-boot-timeout-fresh-machine'](env);
  expect(end).toEqual({ ok: { state: 'success', exitCode: 0 } });
  const sequence = world.sequence(workflowId);
  // The forge reports are not awaited in line, so they interleave; they bracket the job.
  expect(finalizeLast(sequence.filter((s) => !s.startsWith('reportForgeStatus')))).toEqual([
    'recordJob',
    'requestLease',
    'provisionMachine #1',
    'destroyMachine #1 keepConsole',
    'provisionMachine #2',
    'destroyMachine #2',
    'releaseLease',
    'finalizeJob success',
  ]);
  expect(sequence.filter((s) => s.startsWith('reportForgeStatus'))).toEqual([
    'reportForgeStatus pending',
    'reportForgeStatus success',
  ]);
});

test('when no machine connects within its attempts, the job ends error and nothing is left', async () => {
  const { world, workflowId, end } = await scenarios['job-attempts-exhausted'](env);
  const f = applicationFailure(end);
  expect(f.type).toBe('JobErrored');
  expect(f.message).toMatch(/runner did not connect within 1 s \(attempt 2\)/);
  expect(world.sequence(workflowId)).toEqual([
    'recordJob',
    'requestLease',
    'provisionMachine #1',
    'destroyMachine #1 keepConsole',
    'provisionMachine #2',
    'destroyMachine #2 keepConsole',
    'releaseLease',
    'finalizeJob error',
  ]);
});

test('a machine lost mid-job is destroyed and a fresh one runs the job; the log says why', async () => {
  const { world, workflowId, end } = await scenarios['job-machine-lost-fresh-machine'](env);
  expect(end).toEqual({ ok: { state: 'success', exitCode: 0 } });
  expect(finalizeLast(world.sequence(workflowId))).toEqual([
    'recordJob',
    'requestLease',
    'provisionMachine #1',
    'recordMachineLost #1: machine lost: no runner contact for 1 s; retrying on a fresh machine, attempt 2/2',
    'destroyMachine #1',
    'provisionMachine #2',
    'destroyMachine #2',
    'releaseLease',
    'finalizeJob success',
  ]);
});

test("a finished job's log is stored while its machine is destroyed, the slot released once it is gone", async () => {
  const { world, workflowId, end } = await scenarios['job-finalized-beside-destroy'](env);
  expect(end).toEqual({ ok: { state: 'success', exitCode: 0 } });
  const sequence = world.sequence(workflowId);
  expect(sequence.slice(0, 3)).toEqual(['recordJob', 'requestLease', 'provisionMachine #1']);
  // finalizeJob started during the 1.5 s destroy, not after it.
  expect(sequence.indexOf('finalizeJob success')).toBeLessThan(sequence.indexOf('destroyed #1'));
  expect(sequence.indexOf('releaseLease')).toBeGreaterThan(sequence.indexOf('destroyed #1'));
  expect(sequence.filter((s) => !s.startsWith('finalizeJob'))).toEqual([
    'recordJob',
    'requestLease',
    'provisionMachine #1',
    'destroyMachine #1',
    'destroyed #1',
    'releaseLease',
  ]);
});

test("a lost machine's job stores its log only once the machine is gone (its runner may still write)", async () => {
  const { world, workflowId } = await scenarios['job-lost-finalized-after-destroy'](env);
  expect(world.sequence(workflowId)).toEqual([
    'recordJob',
    'requestLease',
    'provisionMachine #1',
    'recordMachineLost #1: machine lost: no runner contact for 1 s; giving up after 1/1 attempts',
    'destroyMachine #1',
    'destroyed #1',
    'releaseLease',
    'finalizeJob error',
  ]);
});

test('when every machine is lost mid-job, the job ends error (not failure) and nothing is left', async () => {
  const { world, workflowId, end } = await scenarios['job-machine-lost-exhausted'](env);
  const f = applicationFailure(end);
  expect(f.type).toBe('JobErrored');
  expect(f.message).toBe('machine lost: no runner contact for 1 s; giving up after 2/2 attempts');
  expect(world.sequence(workflowId)).toEqual([
    'recordJob',
    'requestLease',
    'provisionMachine #1',
    'recordMachineLost #1: machine lost: no runner contact for 1 s; retrying on a fresh machine, attempt 2/2',
    'destroyMachine #1',
    'provisionMachine #2',
    'recordMachineLost #2: machine lost: no runner contact for 1 s; giving up after 2/2 attempts',
    'destroyMachine #2',
    'releaseLease',
    'finalizeJob error',
  ]);
});

test('a job cancelled while queued gives up its slot wait and ends cancelled', async () => {
  const { world, workflowId, end } = await scenarios['job-cancelled-queued'](env);
  expect(failure(end)).toBeInstanceOf(CancelledFailure);
  expect(world.sequence(workflowId)).toEqual([
    'recordJob',
    'requestLease',
    'releaseLease',
    'finalizeJob cancelled',
  ]);
});

test.each([
  ['while its machine is being provisioned', 'job-cancelled-provisioning'],
  ['while its machine boots', 'job-cancelled-booting'],
  ['while running', 'job-cancelled-running'],
] as const)('a job cancelled %s destroys the machine and releases the slot', async (_when, scenario) => {
  const { world, workflowId, end } = await scenarios[scenario](env);
  expect(failure(end)).toBeInstanceOf(CancelledFailure);
  expect(world.sequence(workflowId)).toEqual(CANCELLED_WITH_MACHINE);
});

test('jobs whose needs failed are skipped without a machine; independent jobs still run', async () => {
  const { world, workflowId, end } = await scenarios['pipeline-needs-failure-skips'](env);
  const f = applicationFailure(end);
  expect(f.type).toBe('PipelineFailed');
  expect(f.details?.[0]).toEqual({
    state: 'failure',
    message: 'failed: lint',
    jobs: { lint: 'failure', test: 'skipped', deploy: 'skipped', docs: 'success' },
  });
  const sequence = world.sequence(workflowId);
  expect(sequence).toEqual(
    expect.arrayContaining(['updatePipelineJob test skipped', 'updatePipelineJob deploy skipped']),
  );
  expect(sequence).not.toContain('updatePipelineJob test running');
  expect(sequence).not.toContain('updatePipelineJob deploy running');
  expect(sequence.at(-1)).toBe('finalizePipeline failure');
  // Only lint and docs got machines.
  const provisioned = world.calls
    .filter((c) => c.what.startsWith('provisionMachine'))
    .map((c) => c.workflowId);
  expect(provisioned.sort()).toEqual(['docs', 'lint'].map((j) => pipelineJobWorkflowId(workflowId, j)));
});

test('a newer push cancels the superseded pipeline, whose running job destroys its machine', async () => {
  const r = await scenarios['pipeline-superseded'](env);
  expect(r.end).toEqual({ failed: expect.any(WorkflowFailedError) });
  expect(failure(r.end)).toBeInstanceOf(CancelledFailure);
  expect(r.newerEnd).toEqual({ ok: { state: 'success', jobs: { build: 'success' } } });
  expect(r.world.sequence(r.newerId)).toContain('supersededPipelines');
  expect(r.world.sequence(r.workflowId)).toEqual(
    expect.arrayContaining(['updatePipelineJob build cancelled', 'finalizePipeline cancelled']),
  );
  expect(r.world.sequence(pipelineJobWorkflowId(r.workflowId, 'build'))).toEqual(CANCELLED_WITH_MACHINE);
});

test('a pipeline cancelled between planning and its first job records every job and itself cancelled', async () => {
  const { world, workflowId, end } = await scenarios['pipeline-cancelled-after-planning'](env);
  expect(failure(end)).toBeInstanceOf(CancelledFailure);
  expect(world.sequence(workflowId)).toEqual([
    'recordPipeline',
    'loadPipelinePlan',
    'recordPipelineJobs build:waiting',
    'updatePipelineJob build cancelled',
    'finalizePipeline cancelled',
  ]);
});

/** The job workflows of `pipeline` in the order they got their (first) machine. */
function provisionOrder(world: World, pipeline: string): string[] {
  return world.calls
    .filter((c) => c.workflowId.startsWith(`${pipeline}/job/`) && c.what === 'provisionMachine #1')
    .map((c) => c.workflowId.slice(pipeline.length + '/job/'.length));
}

test('fail-fast: a failed matrix instance cancels the running one and the one waiting for max-parallel', async () => {
  const { world, workflowId, end } = await scenarios['pipeline-matrix-fail-fast'](env);
  const f = applicationFailure(end);
  expect(f.type).toBe('PipelineFailed');
  expect(f.details?.[0]).toEqual({
    state: 'failure',
    message: 'failed: test-1',
    jobs: { 'test-1': 'failure', 'test-2': 'cancelled', 'test-3': 'cancelled', report: 'skipped' },
  });
  // max-parallel 2: the third instance never got a machine; the second's was destroyed.
  expect(provisionOrder(world, workflowId).sort()).toEqual(['test-1', 'test-2']);
  expect(world.sequence(pipelineJobWorkflowId(workflowId, 'test-2'))).toEqual(CANCELLED_WITH_MACHINE);
  const sequence = world.sequence(workflowId);
  expect(sequence).not.toContain('updatePipelineJob test-3 running');
  expect(sequence).toEqual(
    expect.arrayContaining(['updatePipelineJob test-3 cancelled', 'updatePipelineJob report skipped']),
  );
});

test('max-parallel 1 runs the instances one at a time; without fail-fast a failure stops none', async () => {
  const { world, workflowId, end } = await scenarios['pipeline-matrix-max-parallel'](env);
  expect(applicationFailure(end).details?.[0]).toEqual({
    state: 'failure',
    message: 'failed: test-a',
    jobs: { 'test-a': 'failure', 'test-b': 'success', 'test-c': 'success' },
  });
  // Each instance starts only after the one before it ended.
  const sequence = world
    .sequence(workflowId)
    .filter((s) => /^updatePipelineJob .* (running|success|failure)$/.test(s));
  expect(sequence).toEqual([
    'updatePipelineJob test-a running',
    'updatePipelineJob test-a failure',
    'updatePipelineJob test-b running',
    'updatePipelineJob test-b success',
    'updatePipelineJob test-c running',
    'updatePipelineJob test-c success',
  ]);
});

test('continue-on-error: the failed job does not block what needs it, and the pipeline succeeds', async () => {
  const { world, workflowId, end } = await scenarios['pipeline-continue-on-error'](env);
  expect(end).toEqual({ ok: { state: 'success', jobs: { flaky: 'failure', deploy: 'success' } } });
  expect(world.sequence(workflowId)).toEqual(
    expect.arrayContaining(['updatePipelineJob deploy running', 'finalizePipeline success']),
  );
});

test("a host's pool owner looks again at once when a claim kicks it, not only on its timer", async () => {
  const started = Date.now();
  const { world, workflowId, end } = await scenarios['pool-kick'](env);
  expect(end).toEqual({ ok: undefined });
  // The timer is an hour: only the kick can have brought the second look.
  expect(world.sequence(workflowId)).toEqual(['reconcilePool', 'reconcilePool']);
  expect(Date.now() - started).toBeLessThan(60_000);
});
