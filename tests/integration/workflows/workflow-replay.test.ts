/**
 * Replays the recorded histories of every workflow type (tests/fixtures/histories, earlier/ included) with
 * the current workflow code. A change that makes a run in flight take another path on replay
 * (a non-deterministic change: an activity added, removed or reordered, a timer moved) fails
 * here with a DeterminismViolationError, not in a worker with runs in flight.
 *
 * The histories are the decision scenarios of tests/support/workflow-world.ts. After an
 * intentional change to what the workflows do, re-record them (then commit the files):
 *
 *   npm run build --silent && SOLSTICE_RECORD_HISTORIES=1 npx jest tests/integration/workflows/workflow-replay.test.ts
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type ReplayResult } from '@temporalio/worker';
import type { WorkflowType } from '../../../ingress/start-workflow';
import { createLogger } from '../../../platform/logger';
import { installTemporalRuntime } from '../../../platform/temporal';
import { recordedRunFromJSON, recordedRunToJSON } from '../../support/history-json';
import { bundleWorkflows, scenarios } from '../../support/workflow-world';

const DIR = path.resolve(__dirname, '../../fixtures/histories');
const RECORD = process.env.SOLSTICE_RECORD_HISTORIES === '1';

/** Every workflow type the worker registers must have histories here (a new one fails the compile). */
const TYPES: Record<WorkflowType, true> = {
  JobWorkflow: true,
  PipelineWorkflow: true,
  RetentionWorkflow: true,
  PoolWorkflow: true,
};

/** The current recording: what re-recording replaces. */
function historyFiles(): string[] {
  return fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/**
 * Everything to replay: the current recording and, under earlier/, histories recorded by
 * earlier workflow code (each folder named for the day it was set aside). A worker with today's code
 * takes over the runs still in flight from before such a change, so those histories must keep
 * replaying, through the change's patched() branch; re-recording never deletes them.
 */
function replayedFiles(): string[] {
  return (fs.readdirSync(DIR, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.split(path.sep).join('/'))
    .sort();
}

/** Runs every scenario on the run's dev server and keeps the histories of the runs it names. */
async function record(): Promise<void> {
  const address = process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('SOLSTICE_TEST_TEMPORAL_ADDRESS is unset: run through jest (global setup)');
  const testEnv = await TestWorkflowEnvironment.createFromExistingServer({ address });
  try {
    const env = {
      client: testEnv.client,
      connection: testEnv.nativeConnection,
      bundle: await bundleWorkflows(),
    };
    for (const f of historyFiles()) fs.rmSync(path.join(DIR, f));
    for (const [name, run] of Object.entries(scenarios)) {
      const { histories } = await run(env);
      for (const [suffix, workflowId] of Object.entries(histories)) {
        const history = await testEnv.client.workflow.getHandle(workflowId).fetchHistory();
        const file = path.join(DIR, `${name}${suffix ? `.${suffix}` : ''}.json`);
        fs.writeFileSync(file, recordedRunToJSON({ workflowId, history }));
      }
    }
    // As `npm run lint` checks them (prettier's API cannot load inside jest: it imports ESM).
    execFileSync(process.execPath, [require.resolve('prettier/bin/prettier.cjs'), '--write', DIR], {
      stdio: 'ignore',
    });
  } finally {
    await testEnv.teardown();
  }
}

beforeAll(async () => {
  const log = createLogger('test');
  log.level = 'warn';
  installTemporalRuntime(log);
  if (RECORD) await record();
}, 300_000);

test('the recorded histories cover every workflow type', () => {
  const types = new Set(
    historyFiles().map((f) => {
      const { history } = recordedRunFromJSON(fs.readFileSync(path.join(DIR, f), 'utf8'));
      return history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
    }),
  );
  expect([...types].sort()).toEqual(Object.keys(TYPES).sort());
});

test('every recorded history, those of earlier workflow code too, replays with the current workflow code', async () => {
  const files = replayedFiles();
  expect(files.filter((f) => f.startsWith('earlier/')).length).toBeGreaterThan(0);
  const runs = files.map((f) => recordedRunFromJSON(fs.readFileSync(path.join(DIR, f), 'utf8')));
  const fileOf = new Map(runs.map((r, i) => [r.workflowId, files[i]]));
  expect(fileOf.size).toBe(files.length); // a workflow id twice would hide one file's result
  const results: ReplayResult[] = [];
  for await (const r of Worker.runReplayHistories({ workflowBundle: await bundleWorkflows() }, runs)) {
    results.push(r);
  }
  expect(results.map((r) => fileOf.get(r.workflowId)).sort()).toEqual(files);
  const failed = results
    .filter((r) => r.error)
    .map((r) => `${fileOf.get(r.workflowId)}: ${r.error?.name}: ${r.error?.message}`);
  expect(failed).toEqual([]);
});
