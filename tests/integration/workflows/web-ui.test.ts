/**
 * What the Temporal Web UI shows about runs, read back through the Temporal client: search
 * attributes set at start and upserted as the state changes, static summary and details,
 * current details, activity summaries, and the `status` query.
 */
import path from 'node:path';
import fs from 'node:fs';
import { defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import { statusQuery } from '../../../workflows/signals';
import { pipelineJobWorkflowId } from '../../../model/domain';
import { SEARCH_ATTRIBUTES } from '../../../model/search-attributes';
import { jobRepo, makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { gatePath, waitFor } from '../../support/wait';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ publicUrl: 'http://ci.example/' });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
});

async function stateAttribute(handle: WorkflowHandle): Promise<string | undefined> {
  return (await handle.describe()).typedSearchAttributes.get(SEARCH_ATTRIBUTES.state);
}

/** What the SDK reports through the built-in metadata query (current details). */
async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return meta.currentDetails ?? '';
}

/** Summaries of the run's activities, local ones (recorded as markers) included. */
async function activitySummaries(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.activityTaskScheduledEventAttributes || e.markerRecordedEventAttributes)
    .map((e) =>
      e.userMetadata?.summary ? defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary) : '',
    );
}

test('a pipeline and its job carry search attributes, summaries, details and a status query', async () => {
  const repo = jobRepo('echo web-ui');
  const name = path.basename(repo.dir);
  const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha, { ref: 'refs/heads/main' });
  const pipeline = await h.pipelineResult(workflowId, pipelineId);
  expect(pipeline.state).toBe('success');

  const p = h.client.workflow.getHandle(workflowId);
  const pd = await p.describe();
  expect(pd.typedSearchAttributes.get(SEARCH_ATTRIBUTES.repo)).toBe(name);
  expect(pd.typedSearchAttributes.get(SEARCH_ATTRIBUTES.branch)).toBe('main');
  expect(pd.typedSearchAttributes.get(SEARCH_ATTRIBUTES.commit)).toBe(repo.sha);
  expect(pd.typedSearchAttributes.get(SEARCH_ATTRIBUTES.state)).toBe('success');
  expect(await pd.staticSummary()).toBe(`${name}@${repo.sha.slice(0, 12)} · pipeline`);
  expect(await pd.staticDetails()).toContain(`**Commit** ${repo.sha} (refs/heads/main)`);
  expect(await currentDetails(p)).toBe('**success**\n- `job` success');

  const job = h.client.workflow.getHandle(pipelineJobWorkflowId(workflowId, 'job'));
  const jd = await job.describe();
  expect(jd.type).toBe('JobWorkflow');
  expect(jd.typedSearchAttributes.get(SEARCH_ATTRIBUTES.repo)).toBe(name);
  expect(jd.typedSearchAttributes.get(SEARCH_ATTRIBUTES.job)).toBe('job');
  expect(jd.typedSearchAttributes.get(SEARCH_ATTRIBUTES.label)).toBe('local');
  expect(jd.typedSearchAttributes.get(SEARCH_ATTRIBUTES.state)).toBe('success');
  expect(await jd.staticSummary()).toBe(`${name}@${repo.sha.slice(0, 12)} · job`);
  const jobs = await h.pipelines.listJobs(pipelineId);
  const jobId = jobs.find((j) => j.name === 'job')?.jobId;
  expect(jobId).toBeDefined();
  // The job page link (SOLSTICE_PUBLIC_URL), the same one forge statuses carry.
  expect(await jd.staticDetails()).toContain(`[${jobId}](http://ci.example/jobs/${jobId})`);
  expect(await currentDetails(job)).toMatch(/^\*\*success\*\* \(attempt 1\)/);
  expect(await job.query(statusQuery)).toEqual({
    state: 'success',
    attempt: 1,
    exitCode: 0,
    step: { index: 1, total: 1, name: '.solstice/job.sh' },
  });
  expect(await activitySummaries(job)).toEqual(
    expect.arrayContaining(['record job', 'boot VM local', 'destroy machine', 'store log']),
  );

  // The filters the README documents find both runs (visibility is eventually consistent).
  const query = `SolsticeCommit = "${repo.sha}" AND SolsticeState = "success" AND SolsticeRepo = "${name}"`;
  let found: string[] = [];
  await waitFor(
    async () => {
      found = [];
      for await (const w of h.client.workflow.list({ query })) found.push(w.type);
      return found.length === 2;
    },
    30_000,
    'both runs listed by their search attributes',
  );
  expect(found.sort()).toEqual(['JobWorkflow', 'PipelineWorkflow']);
});

test("a running job's state is upserted and its current details name the step that runs", async () => {
  const gate = gatePath();
  const repo = makeRepo({
    '.solstice/workflow.kdl': `
      job "build" {
        step "compile" run="echo compiling"
        step "wait for gate" run="while [ ! -e ${gate} ]; do sleep 0.1; done"
      }
    `,
  });
  const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
  const handle = h.client.workflow.getHandle(pipelineJobWorkflowId(workflowId, 'build'));
  try {
    await waitFor(
      async () =>
        (await currentDetails(handle).catch(() => '')) ===
        '**running** (attempt 1)\n\nstep 2/2 `wait for gate`',
      60_000,
      'the current details to name the second step',
    );
    expect(await stateAttribute(handle)).toBe('running');
    expect(await handle.query(statusQuery)).toEqual({
      state: 'running',
      attempt: 1,
      step: { index: 2, total: 2, name: 'wait for gate' },
    });
  } finally {
    fs.writeFileSync(gate, '');
  }
  expect((await h.pipelineResult(workflowId, pipelineId)).state).toBe('success');
  expect(await stateAttribute(handle)).toBe('success');
});
