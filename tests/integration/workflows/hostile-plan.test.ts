/**
 * Issue 21, planning on a real worker. A 500 KB invalid workflow file is rejected within 2 s
 * with a located error, in a thread of its own: while it is planned, another job on the same
 * worker keeps logging, the worker's event loop keeps turning and its host heartbeat never
 * lapses. And a planning git that hangs dies with its activity when the pipeline is cancelled.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { planOffThread } from '../../../activities/plan-thread';
import { WORKFLOW_FILE_PATH } from '../../../model/job-definition-paths';
import { WORKFLOW_FILE_LIMITS } from '../../../workflow-file';
import { makeRepo, type TestRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { waitFor } from '../../support/wait';

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
 * The file: 500 KB of one unknown node per line. Walked whole, its 85,000 problems
 * took seconds of the worker's one thread and a 10 MB message (minutes and gigabytes in the
 * report that filed the issue).
 */
function fileOfMistakes(): string {
  return 'foo 1\n'.repeat(85_000);
}

/**
 * Just under every text limit (bytes, lines, words) and wrong on every line: as much work as
 * a file is allowed to ask of the parser, and more problems than are listed.
 */
function fileAtEveryLimit(): string {
  const L = WORKFLOW_FILE_LIMITS;
  const count = Math.min(L.lines - 1, Math.floor(L.words / 3) - 1);
  const width = Math.floor((L.bytes - 1) / count);
  const line = `joob "${'a'.repeat(width - 23)}" x="${'b'.repeat(10)}"\n`;
  return line.repeat(count);
}

/** The event loop's turns: a timer every 50 ms, and the longest wait between two turns. */
function loopWatch() {
  let ticks = 0;
  let maxGap = 0;
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 50);
  return {
    get ticks() {
      return ticks;
    },
    get maxGap() {
      return maxGap;
    },
    stop: () => clearInterval(timer),
  };
}

/** From a file's text to its rejection: what the planning activity does after git. */
async function planTimed(text: string) {
  const loop = loopWatch();
  const started = Date.now();
  const err = await planOffThread(
    { [WORKFLOW_FILE_PATH]: text },
    { event: 'push', label: 'local', sha: 'a'.repeat(40) },
  ).catch((e: unknown) => e);
  const took = Date.now() - started;
  loop.stop();
  return { err: err as Error & { type?: string; nonRetryable?: boolean }, took, ticks: loop.ticks };
}

test('a 500 KB invalid file is refused within 2 s with a located error; another job logs and the host heartbeat holds meanwhile', async () => {
  const mistakes = fileOfMistakes();
  const atLimits = fileAtEveryLimit();
  for (const text of [mistakes, atLimits]) {
    expect(text.length).toBeGreaterThan(490 * 1024);
    expect(text.length).toBeLessThanOrEqual(WORKFLOW_FILE_LIMITS.bytes);
  }
  const repo = makeRepo({ [WORKFLOW_FILE_PATH]: mistakes });
  repos.push(repo);

  // Another job on the same worker, logging all the while.
  const gate = path.join(tmp, 'gate');
  const otherRepo = makeRepo({ 'README.md': 'x\n' });
  repos.push(otherRepo);
  const other = await h.startJobWith(
    otherRepo,
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

  // The event loop, the host heartbeat and the other job's log, sampled while the files are planned.
  const loop = loopWatch();
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
  const planned: { took: number; ticks: number }[] = [];
  let linesAfter: number | undefined;
  try {
    // Rejected within 2 s, with the line and column of the problem.
    const refused = await planTimed(mistakes);
    planned.push(refused);
    expect(refused.err).toMatchObject({ type: 'InvalidWorkflowFile', nonRetryable: true });
    expect(refused.err.message).toMatch(
      new RegExp(
        `\\.solstice/workflow\\.kdl:${WORKFLOW_FILE_LIMITS.lines + 1}:1: error: the file has more than ${WORKFLOW_FILE_LIMITS.lines} lines`,
      ),
    );
    expect(refused.took).toBeLessThan(2_000);
    const worst = await planTimed(atLimits);
    planned.push(worst);
    expect(worst.err).toMatchObject({ type: 'InvalidWorkflowFile', nonRetryable: true });
    expect(worst.err.message).toMatch(/\.solstice\/workflow\.kdl:1:1: error: unknown node "joob"/);
    expect(worst.err.message).toMatch(/only the first 100 are listed/);
    expect(worst.took).toBeLessThan(2_000);

    // And the file through a whole pipeline on the worker.
    const pipelineStarted = Date.now();
    const p = await h.startPipeline(repo.dir, repo.sha);
    const pipeline = await h.pipelineResult(p.workflowId, p.pipelineId);
    expect(pipeline.state).toBe('failure');
    expect(pipeline.message).toMatch(/workflow\.kdl:\d+:\d+: error: the file has more than/);
    expect(Date.now() - pipelineStarted).toBeLessThan(30_000);
    linesAfter = await h.jobs.countLogLines(other.jobId);
  } finally {
    sampling = false;
    loop.stop();
    await heartbeat;
    fs.writeFileSync(gate, '');
  }
  expect((await h.result(other.workflowId, other.jobId)).state).toBe('success');

  // Parsed off the event loop: it kept turning while each file was planned (a 50 ms timer
  // fires about took/50 times; planned on the loop itself, it does not fire at all).
  for (const { took, ticks } of planned)
    expect(ticks).toBeGreaterThanOrEqual(Math.min(3, Math.floor(took / 100)));
  expect(loop.maxGap).toBeLessThan(1_000);
  // The host heartbeat never lapsed, and the other job's log kept arriving.
  expect(ages.length).toBeGreaterThan(0);
  expect(Math.max(...ages)).toBeLessThan(TTL_MS);
  expect(linesAfter ?? 0).toBeGreaterThan(linesBefore);
});

test("a plan over its thread's time budget is stopped with a located error; the next plan gets a fresh thread", async () => {
  const files = { [WORKFLOW_FILE_PATH]: fileAtEveryLimit() };
  const trigger = { event: 'push' as const, label: 'local', sha: 'a'.repeat(40) };
  const started = Date.now();
  const err = await planOffThread(files, trigger, { limits: { heapMb: 256, timeoutMs: 5 } }).catch(
    (e: unknown) => e,
  );
  expect(Date.now() - started).toBeLessThan(2_000);
  expect(err).toMatchObject({ type: 'InvalidWorkflowFile', nonRetryable: true });
  expect((err as Error).message).toMatch(
    /^\.solstice\/workflow\.kdl:1:1: error: planning took longer than 0\.005 s and was stopped/,
  );
  const ok = await planOffThread({ [WORKFLOW_FILE_PATH]: 'job "a" {\n  step "s" run="true"\n}\n' }, trigger);
  expect(ok?.jobs.map((j) => j.name)).toEqual(['a']);
});

test("cancelling a pipeline while planning's git hangs kills that git and leaves no folder", async () => {
  // A server that accepts connections and never answers: git's http transport waits on it.
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/silent.git`;
  const commandsNaming = () =>
    fs
      .readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map((e) => {
        try {
          return fs.readFileSync(`/proc/${e}/cmdline`).toString().replace(/\0/g, ' ');
        } catch {
          return '';
        }
      })
      .filter((c) => c.includes(url));
  const planFolders = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('solstice-plan-'));
  const foldersBefore = planFolders();
  try {
    const p = await h.startPipeline(url, 'f'.repeat(40));
    await waitFor(() => commandsNaming().length > 0, 30_000, "planning's git fetch to start");
    // The harness's local provider has the host's repository cache: planning fetches into its
    // bare repository, under its lock, and makes no folder of its own (issue 20).
    expect(
      commandsNaming().some((c) => c.startsWith('flock ') && c.includes(`${h.cfg.stateDir}/host-cache/git/`)),
    ).toBe(true);
    expect(planFolders()).toEqual(foldersBefore);
    await h.client.workflow.getHandle(p.workflowId).cancel();
    // Cancellation reaches the activity with its next heartbeat (throttled by the SDK).
    await waitFor(() => commandsNaming().length === 0, 60_000, "planning's git to be killed");
    expect(planFolders()).toEqual(foldersBefore);
    expect((await h.pipelineResult(p.workflowId, p.pipelineId)).state).toBe('cancelled');
  } finally {
    // Without the fix git would wait on the silent server forever: let it go.
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
}, 120_000);
