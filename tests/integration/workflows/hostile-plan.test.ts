/**
 * Issue 21: a 500 KB invalid workflow file is rejected within 2 s with a located error, in a
 * thread of its own: while it is planned, another job on the same worker keeps logging, the
 * worker's event loop keeps turning and its host heartbeat never lapses.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { planOffThread } from '../../../activities/plan-thread';
import { WORKFLOW_FILE_PATH } from '../../../model/job-definition-paths';
import { WORKFLOW_FILE_LIMITS } from '../../../workflow-file';
import { makeRepo, type TestRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';

const TTL_MS = 3_000;
let h: Harness;
let tmp: string;
const repos: TestRepo[] = [];

beforeAll(async () => {
  h = await startHarness({ hostTtlMs: `${TTL_MS}ms` });
  await h.startWorker();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-hostile-plan-'));
});

afterAll(async () => {
  await h?.close();
  for (const r of repos) fs.rmSync(r.dir, { recursive: true, force: true });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/**
 * Just under every text limit (bytes, lines, words) and wrong on every line: as much work as
 * a file is allowed to ask of the parser, and more problems than are listed.
 */
function invalidFile(): string {
  const L = WORKFLOW_FILE_LIMITS;
  const count = Math.min(L.lines - 1, Math.floor(L.words / 3) - 1);
  const width = Math.floor((L.bytes - 1) / count);
  const line = `joob "${'a'.repeat(width - 23)}" x="${'b'.repeat(10)}"\n`;
  return line.repeat(count);
}

test('a 500 KB invalid file is refused within 2 s with a located error, off the event loop', async () => {
  const text = invalidFile();
  expect(text.length).toBeGreaterThan(490 * 1024);
  expect(text.length).toBeLessThanOrEqual(WORKFLOW_FILE_LIMITS.bytes);
  const repo = makeRepo({ [WORKFLOW_FILE_PATH]: text });
  repos.push(repo);

  // Another job on the same worker, logging all the while.
  const gate = path.join(tmp, 'gate');
  const other = await h.startJobWith(
    makeRepo({ 'README.md': 'x\n' }),
    {
      env: { GATE: gate },
      steps: [
        {
          name: 'tick',
          run: 'i=0; while [ ! -e "$GATE" ]; do i=$((i+1)); echo "tick $i"; sleep 0.1; done',
          continueOnError: false,
        },
      ],
    },
    'test-hostile-plan',
  );
  while ((await h.jobs.countLogLines(other.jobId)) < 3) await new Promise((r) => setTimeout(r, 100));

  // The event loop and the host heartbeat, sampled while the file is planned.
  let maxGap = 0;
  let last = Date.now();
  const loop = setInterval(() => {
    const now = Date.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 50);
  const ages: number[] = [];
  let sampling = true;
  const heartbeat = (async () => {
    while (sampling) {
      const [row] = await h.db.$queryRaw<{ age: number }[]>`
        SELECT (EXTRACT(EPOCH FROM now() - last_seen) * 1000)::float AS age FROM hosts WHERE id = ${h.cfg.hostId}`;
      if (row) ages.push(row.age);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const linesBefore = await h.jobs.countLogLines(other.jobId);

  // From the file's text to its rejection: what the planning activity does after git.
  const started = Date.now();
  const err = await planOffThread(
    { [WORKFLOW_FILE_PATH]: text },
    { event: 'push', label: 'local', sha: 'a'.repeat(40) },
  ).catch((e: unknown) => e);
  const took = Date.now() - started;

  // And the same file through a whole pipeline on the worker.
  const p = await h.startPipeline(repo.dir, repo.sha);
  const pipeline = await h.pipelineResult(p.workflowId, p.pipelineId);
  const linesAfter = await h.jobs.countLogLines(other.jobId);
  sampling = false;
  clearInterval(loop);
  await heartbeat;
  fs.writeFileSync(gate, '');
  expect((await h.result(other.workflowId, other.jobId)).state).toBe('success');

  expect(err).toMatchObject({ type: 'InvalidWorkflowFile', nonRetryable: true });
  expect((err as Error).message).toMatch(/\.solstice\/workflow\.kdl:1:1: error: unknown node "joob"/);
  expect((err as Error).message).toMatch(/only the first 100 are listed/);
  expect(took).toBeLessThan(2_000);
  expect(pipeline.state).toBe('failure');
  expect(pipeline.message).toMatch(/workflow\.kdl:\d+:\d+: error/);

  expect(maxGap).toBeLessThan(1_000);
  expect(ages.length).toBeGreaterThan(0);
  expect(Math.max(...ages)).toBeLessThan(TTL_MS);
  expect(linesAfter).toBeGreaterThan(linesBefore);
});
