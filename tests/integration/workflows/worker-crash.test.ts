/**
 * Durability: the orchestrator worker process is SIGKILLed while a job runs; a new worker
 * process picks the workflow up, the job finishes, and its machine is cleaned up.
 */
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { jobRepo, makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { gatePath, waitFor } from '../../support/wait';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
});

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
}

test('killing the worker mid-job: a new worker finishes the job and nothing is left behind', async () => {
  const gate = gatePath();
  const repo = jobRepo(`echo before\nwhile [ ! -e ${gate} ]; do sleep 0.1; done\necho after`);
  const first = h.spawnWorker();
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  await waitFor(
    async () => (await h.jobs.logLinesAfter(jobId, 0, 1000)).some((l) => l.text === 'before'),
    90_000,
    'job start',
  );

  first.kill('SIGKILL');
  await exited(first);
  // The machine outlives the worker, as a VM would; release the job while no worker runs.
  fs.writeFileSync(gate, '');
  await waitFor(
    async () => (await h.jobs.logLinesAfter(jobId, 0, 1000)).some((l) => l.text === 'after'),
    60_000,
    'job output',
  );

  const second = h.spawnWorker();
  try {
    const job = await h.result(workflowId, jobId);
    expect(job.state).toBe('success');
    expect(job.attempt).toBe(1);
    await waitFor(async () => (await h.leftovers()).workspaces.length === 0, 30_000, 'cleanup');
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  } finally {
    second.kill('SIGTERM');
    await exited(second);
  }
});

test('killing the worker mid-pipeline: a new worker replays the pipeline and runs the rest of its jobs', async () => {
  const gate = gatePath();
  const repo = makeRepo({
    '.solstice/workflow.kdl': `
      job "a" { step "wait" run="echo before; while [ ! -e ${gate} ]; do sleep 0.1; done" }
      job "b" {
        needs "a"
        step "next" run="echo b ran"
      }
    `,
  });
  const first = h.spawnWorker();
  const { pipelineId, workflowId } = await h.startPipeline(repo.dir, repo.sha);
  const jobIdOf = async (name: string) =>
    (await h.pipelines.listJobs(pipelineId)).find((j) => j.name === name)?.jobId ?? undefined;
  await waitFor(
    async () => {
      const a = await jobIdOf('a');
      return a !== undefined && (await h.jobs.logLinesAfter(a, 0, 1000)).some((l) => l.text === 'before');
    },
    90_000,
    'job a to start',
  );
  first.kill('SIGKILL');
  await exited(first);
  fs.writeFileSync(gate, '');

  const second = h.spawnWorker();
  try {
    const p = await h.pipelineResult(workflowId, pipelineId);
    expect(p.state).toBe('success');
    const jobs = await h.pipelines.listJobs(pipelineId);
    expect(jobs.map((j) => [j.name, j.state])).toEqual([
      ['a', 'success'],
      ['b', 'success'],
    ]);
    const b = (await jobIdOf('b')) as string;
    expect((await h.jobs.logLinesAfter(b, 0, 1000)).map((l) => l.text)).toContain('b ran');
    await waitFor(async () => (await h.leftovers()).workspaces.length === 0, 30_000, 'cleanup');
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  } finally {
    second.kill('SIGTERM');
    await exited(second);
  }
});
