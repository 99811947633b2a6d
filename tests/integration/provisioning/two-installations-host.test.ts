/**
 * Two installations (two databases, two task queues) on one host with the same host id, as two
 * `solstice up` with the default host id (the hostname) are: each sweeps every 5 s while both
 * run jobs for a minute, and neither touches the other's machines. Before machines carried
 * their installation, each sweeper found the other's runner processes under "its" host id,
 * found no job for them in its database, and killed them ("its job is unknown").
 */
import { randomBytes } from 'node:crypto';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';

const hostId = `shared-host-${randomBytes(3).toString('hex')}`;
let a: Harness;
let b: Harness;

beforeAll(async () => {
  const settings = { hostId, sweepIntervalMs: '5s', jobTimeoutMs: '5m' };
  [a, b] = await Promise.all([startHarness(settings), startHarness(settings)]);
  await Promise.all([a.startWorker(), b.startWorker()]);
}, 120_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

test('two installations with one host id run jobs side by side; neither sweeper touches the other', async () => {
  // A minute of ticking per job: a dozen sweeps of each installation pass over every machine.
  const repo = jobRepo('i=0\nwhile [ $i -lt 12 ]; do echo "tick $i"; sleep 5; i=$((i+1)); done');
  const runs = await Promise.all(
    [a, b].flatMap((h) => [1, 2, 3].map(async () => ({ h, ...(await h.enqueue(repo.dir, repo.sha)) }))),
  );
  const jobs = await Promise.all(runs.map(({ h, workflowId, jobId }) => h.result(workflowId, jobId)));
  expect(jobs.map((j) => [j.state, j.exitCode])).toEqual(jobs.map(() => ['success', 0]));
  for (const { h, jobId } of runs) {
    const texts = (await h.jobs.logLinesAfter(jobId, 0, 1000)).map((l) => l.text);
    expect(texts.filter((t) => t.startsWith('tick '))).toHaveLength(12);
  }
  expect(await a.leftovers()).toEqual({ processes: [], workspaces: [] });
  expect(await b.leftovers()).toEqual({ processes: [], workspaces: [] });
}, 300_000);
