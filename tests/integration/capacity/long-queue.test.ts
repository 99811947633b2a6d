/**
 * A long queue cannot starve the worker: more jobs wait for one `local` slot than the worker has
 * activity slots (100, the SDK default). Waiting happens in the workflows (a condition on the
 * leaseGranted signal), so releases and provisioning always find a free activity slot and every
 * job finishes, served in the order it asked. With a waiting activity per job this deadlocked:
 * 100 waits held every slot and the first release sat `Scheduled`.
 *
 * 130 jobs, the count that deadlocked; `npm run bench:queue` runs 300 for the README figures.
 */
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';

const JOBS = 130;
let h: Harness | undefined;

afterAll(async () => {
  await h?.close();
});

test(`${JOBS} queued echo jobs on one worker with label limit 1 all finish, first come first served`, async () => {
  const harness = (h = await startHarness({ labelLimits: 'local=1' }));
  await harness.startWorker();
  const repo = jobRepo('echo hi');
  const started: { jobId: string; workflowId: string }[] = [];
  for (let i = 0; i < JOBS; i++) started.push(await harness.enqueue(repo.dir, repo.sha));
  const ended = await Promise.all(started.map((s) => harness.result(s.workflowId, s.jobId)));
  expect(ended.filter((j) => j.state !== 'success')).toEqual([]);

  // Served in request order: slots granted, and so jobs finished, in the order the leases queued.
  const leases = await harness.db.$queryRaw<{ jobId: string; granted: Date; finished: Date }[]>`
    SELECT l.job_id::text AS "jobId", l.granted_at AS granted, j.finished_at AS finished
    FROM leases l JOIN jobs j ON j.id = l.job_id ORDER BY l.seq`;
  expect(leases).toHaveLength(JOBS);
  const byGrant = [...leases].sort((a, b) => a.granted.getTime() - b.granted.getTime());
  const byFinish = [...leases].sort((a, b) => a.finished.getTime() - b.finished.getTime());
  expect(byGrant.map((l) => l.jobId)).toEqual(leases.map((l) => l.jobId));
  expect(byFinish.map((l) => l.jobId)).toEqual(leases.map((l) => l.jobId));
}, 1_800_000);
