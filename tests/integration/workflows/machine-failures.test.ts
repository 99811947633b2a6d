/** Infrastructure failures: a machine whose runner never connects is replaced, then the job errors. */
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { freePort } from '../../../platform/net';

let h: Harness;

beforeAll(async () => {
  // Nothing listens on this port, so machines cannot download the runner.
  const dead = await freePort();
  h = await startHarness({ runnerUrl: `http://127.0.0.1:${dead}/runner.js`, bootTimeoutMs: '4s' });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
});

test('a runner that never connects: a fresh machine is tried, then the job ends error with the console in its log', async () => {
  const repo = jobRepo('echo never runs');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('error');
  expect(job.attempt).toBe(2);
  expect(job.message).toMatch(/runner did not connect within 4 s/);
  const log = (await h.jobs.logLinesAfter(jobId, 0, 1000)).map((l) => l.text).join('\n');
  expect(log).toMatch(/console ended with/);
  expect(log).toMatch(/fetching runner from http:\/\/127\.0\.0\.1/);
  expect(await h.db.vm.count({ where: { jobId, destroyedAt: null } })).toBe(0);
  expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
});
