/**
 * JobWorkflow reports to the forge: a recording HTTP server stands in for the Forgejo API
 * (and for the repository, which it does not serve, so the checkout cannot fetch it and the job
 * ends `error`: an unreachable repository is an infrastructure fault, not the script's). Every status call is checked; a forge that keeps failing is retried, recorded,
 * and changes nothing about the job's result.
 */
import { startJob } from '../../../ingress/job-start';
import { startFakeForge, type FakeForge, type ForgeCall as Call } from '../../support/fake-forge';
import { startHarness, type Harness } from '../../support/harness';

let h: Harness;
let server: FakeForge;
let forgeUrl: string;
let calls: Call[];
let answer: number;
const SHA = 'bffeb74224043ba2feb48d137756c8a9331c449a';

beforeAll(async () => {
  server = await startFakeForge((call) => {
    if (!call.path.startsWith('/api/')) return { status: 404 }; // git clone: no such repository
    calls.push(call);
    return { status: answer, body: answer < 300 ? { id: calls.length } : { message: 'forge is down' } };
  });
  forgeUrl = server.url;
  h = await startHarness({ forgejoToken: 'fj-test-token', publicUrl: 'http://ci.example' });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
  await server?.close();
});

beforeEach(() => {
  calls = [];
  answer = 201;
});

async function runForgejoJob(): Promise<string> {
  const { jobId, workflowId } = await startJob(h.client, h.cfg, {
    source: 'forgejo',
    repoUrl: `${forgeUrl}/solstice/app.git`,
    commitSha: SHA,
    ref: 'refs/heads/main',
  });
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('error'); // the checkout could not fetch: the forge serves no repository
  return jobId;
}

test('a Forgejo job reports pending, then its result, as commit statuses', async () => {
  const jobId = await runForgejoJob();
  expect(calls).toEqual(
    ['pending', 'error'].map((state) => ({
      method: 'POST',
      path: `/api/v1/repos/solstice/app/statuses/${SHA}`,
      auth: 'token fj-test-token',
      body: {
        state,
        context: 'solstice/job',
        description: expect.any(String) as string,
        target_url: `http://ci.example/jobs/${jobId}`,
      },
    })),
  );
  expect(calls[0].body?.description).toBe('queued');
});

test('a forge that keeps failing is retried and recorded; the job result is unchanged', async () => {
  answer = 503;
  const jobId = await runForgejoJob();
  // Four attempts for pending and four for the result, then given up.
  expect(calls.filter((c) => c.body?.state === 'pending')).toHaveLength(4);
  expect(calls.filter((c) => c.body?.state === 'error')).toHaveLength(4);
  const job = await h.jobs.getJob(jobId);
  expect(job?.state).toBe('error');
});

test('manual jobs report nothing', async () => {
  const { jobId, workflowId } = await startJob(h.client, h.cfg, {
    source: 'manual',
    repoUrl: `${forgeUrl}/solstice/app.git`,
    commitSha: SHA,
  });
  await h.result(workflowId, jobId);
  expect(calls).toEqual([]);
});
