/**
 * JobWorkflow reports to the forge: a recording HTTP server stands in for the Forgejo API
 * (and for the repository, which it does not serve, so the checkout fails and the job ends
 * `failure`). Every status call is checked; a forge that keeps failing is retried, recorded,
 * and changes nothing about the job's result.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startJob } from '../../ingress/job-start';
import { startHarness, type Harness } from '../support/harness';

interface Call {
  method: string;
  path: string;
  auth?: string;
  body?: Record<string, unknown>;
}

let h: Harness;
let server: http.Server;
let forgeUrl: string;
let calls: Call[];
let answer: number;
const SHA = 'bffeb74224043ba2feb48d137756c8a9331c449a';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '';
      if (path.startsWith('/api/')) {
        calls.push({
          method: req.method ?? '',
          path,
          auth: req.headers.authorization,
          body: raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined,
        });
        res.writeHead(answer, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(answer < 300 ? { id: calls.length } : { message: 'forge is down' }));
      }
      res.writeHead(404).end(); // git clone: no such repository
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  forgeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  h = await startHarness({ forgejoToken: 'fj-test-token', publicUrl: 'http://ci.example' });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
  await new Promise((r) => server?.close(r));
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
  expect(job.state).toBe('failure'); // the checkout failed: the forge serves no repository
  return jobId;
}

test('a Forgejo job reports pending, then its result, as commit statuses', async () => {
  const jobId = await runForgejoJob();
  expect(calls).toEqual(
    ['pending', 'failure'].map((state) => ({
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
  expect(calls.filter((c) => c.body?.state === 'failure')).toHaveLength(4);
  const job = await h.jobs.getJob(jobId);
  expect(job?.state).toBe('failure');
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
