/**
 * Issue 21: a repository author's input bounded before the expensive work. Workflow files
 * over a limit are refused with a located error; a plan too large for a Temporal payload is
 * refused; git cannot be pointed at transports or host paths it was not allowed; every git
 * planning starts has a timeout, dies with its process group, and leaves no temp folder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { ApplicationFailure } from '@temporalio/common';
import { loadPipelinePlan, planInProcess } from '../../../activities/commit-plan';
import { MAX_PLAN_BYTES, planDefinitions } from '../../../activities/plan-definitions';
import { WORKFLOW_FILE_PATH } from '../../../model/job-definition-paths';
import { ChildProcessError, liveChildGroups, runBounded } from '../../../platform/child-process';
import { parseWorkflowFile, WORKFLOW_FILE_LIMITS } from '../../../workflow-file';
import { makeRepo, type TestRepo } from '../../support/git-repo';

const repos: TestRepo[] = [];
afterAll(() => repos.forEach((r) => rmSync(r.dir, { recursive: true, force: true })));
const repo = (files: Record<string, string>) => {
  const r = makeRepo(files);
  repos.push(r);
  return r;
};
const planTemps = () => readdirSync(os.tmpdir()).filter((n) => n.startsWith('solstice-plan-'));

describe('workflow file limits', () => {
  test('a 486 KB file of mistakes lists at most 100 problems, the last saying more exist', () => {
    const text = 'foo 1\n'.repeat(81_000);
    const r = parseWorkflowFile(text, { knownLabels: [] });
    expect(r.ok).toBe(false);
    expect(r.diagnostics.length).toBeLessThanOrEqual(WORKFLOW_FILE_LIMITS.diagnostics + 1);
    expect(r.diagnostics[0]).toMatchObject({ line: WORKFLOW_FILE_LIMITS.lines + 1, code: 'too-many-lines' });
  });

  test.each([
    ['bytes', 'x'.repeat(WORKFLOW_FILE_LIMITS.bytes + 1), 'too-large'],
    ['words', 'a 1 2 3 4 5 6 7 8 9\n'.repeat(2_001), 'too-many-words'],
    [
      'jobs',
      Array.from(
        { length: WORKFLOW_FILE_LIMITS.jobs + 1 },
        (_, i) => `job "j${i}" { step "s" run="true" }`,
      ).join('\n'),
      'too-many-jobs',
    ],
    [
      'steps',
      'job "a" {\n' + '  step "s" run="true"\n'.repeat(WORKFLOW_FILE_LIMITS.stepsPerFile + 1) + '}\n',
      'too-many-steps',
    ],
    [
      'depth',
      'a {'.repeat(WORKFLOW_FILE_LIMITS.depth + 1) + '}'.repeat(WORKFLOW_FILE_LIMITS.depth + 1),
      'too-deep',
    ],
  ])('over the %s limit: one located error', (_what, text, code) => {
    const r = parseWorkflowFile(text, { knownLabels: [] });
    expect(r.ok).toBe(false);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0].code).toBe(code);
    expect(r.diagnostics[0].line).toBeGreaterThanOrEqual(1);
  });

  test('a very long misspelt name is reported without comparing it to every known name', () => {
    const started = Date.now();
    const r = parseWorkflowFile('x'.repeat(400_000), { knownLabels: [] });
    // Compared to every known name the edit distances take seconds (about 40 times longer).
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(r.diagnostics[0]).toMatchObject({ line: 1, column: 1 });
    expect(r.diagnostics[0].suggestion).toBeUndefined();
  });

  test('a plan larger than a Temporal payload should be is refused with a located error', async () => {
    // 64 matrix cells of 20 KB of steps: a small file, a large plan.
    const steps = Array.from({ length: 20 }, (_, i) => `  step "s${i}" run="${'e'.repeat(1000)}"`).join('\n');
    const text = `job "a" {\n  matrix {\n    x ${Array.from({ length: 8 }, (_, i) => i).join(' ')}\n    y ${Array.from({ length: 8 }, (_, i) => i).join(' ')}\n  }\n${steps}\n}\n`;
    const err = await planDefinitions(
      { [WORKFLOW_FILE_PATH]: text },
      { event: 'push', label: 'local', sha: 'a'.repeat(40) },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'InvalidWorkflowFile', nonRetryable: true });
    expect((err as Error).message).toMatch(
      new RegExp(
        `^\\.solstice/workflow\\.kdl:1:1: error: the plan is \\d+ bytes, more than the ${MAX_PLAN_BYTES}`,
      ),
    );
  });
});

describe('git in planning', () => {
  const plan = (repoUrl: string, sha: string, gitProtocols?: string[]) =>
    loadPipelinePlan(
      { repoUrl, commitSha: sha, event: 'push', label: 'local', gitProtocols },
      { plan: planInProcess },
    );

  test("a forge's repository URL cannot be a path on the worker's host", async () => {
    const r = repo({ '.solstice/job.sh': 'true\n' });
    const err = await plan(r.dir, r.sha).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cannot fetch .*transport 'file' not allowed/);
    // An operator's enqueue allows it.
    expect(await plan(r.dir, r.sha, ['https', 'ssh', 'file'])).toMatchObject({ jobs: [{ name: 'job' }] });
  });

  test.each(['fd::3', 'ext::sh -c true', 'file:///etc'])(
    '%s is refused without hanging or leaking',
    async (url) => {
      const before = planTemps();
      const err = await plan(url, 'f'.repeat(40)).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/not allowed/);
      expect(planTemps()).toEqual(before);
      expect(liveChildGroups()).toEqual([]);
    },
  );

  test('a definition file over the size limit is refused by its size, before it is read', async () => {
    // Larger than the 16 MiB git's output was once read into (the file was 44 MB): read
    // first, it was "neither file"; by its size it is the file's own located error.
    const r = repo({ [WORKFLOW_FILE_PATH]: `# ${'x'.repeat(17 * 1024 * 1024)}\n` });
    const err = await plan(r.dir, r.sha, ['file']).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InvalidWorkflowFile', nonRetryable: true });
    expect((err as Error).message).toMatch(
      /^\.solstice\/workflow\.kdl:1:1: error: the file is \d+ bytes, more than/,
    );
  });
});

describe("planning's git is bounded", () => {
  /** A server that accepts connections and never answers: git's http transport waits on it. */
  async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/silent.git`,
      close: () => {
        for (const s of sockets) s.destroy();
        return new Promise((r) => server.close(() => r()));
      },
    };
  }
  /** Live processes whose command line names `needle` (git fetch and its git-remote-http). */
  const processesNaming = (needle: string) =>
    readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .filter((e) => {
        try {
          return readFileSync(`/proc/${e}/cmdline`).toString().includes(needle);
        } catch {
          return false;
        }
      });

  test('a fetch from a server that never answers is stopped at its timeout, its helpers with it, its folder removed', async () => {
    const server = await silentServer();
    const before = planTemps();
    try {
      const started = Date.now();
      const err = await loadPipelinePlan(
        {
          repoUrl: server.url,
          commitSha: 'f'.repeat(40),
          event: 'push',
          label: 'local',
          gitProtocols: ['http'],
        },
        { plan: planInProcess, gitTimeoutMs: { fetch: 1_000, read: 1_000 } },
      ).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/^cannot fetch .*took longer than 1000 ms and was stopped/);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(processesNaming(server.url)).toEqual([]);
      expect(liveChildGroups()).toEqual([]);
      expect(planTemps()).toEqual(before);
    } finally {
      await server.close();
    }
  }, 30_000);
});

describe('runBounded', () => {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const childPids = (marker: string) =>
    execFileSync('sh', ['-c', `pgrep -f ${marker} || true`])
      .toString()
      .split('\n')
      .filter(Boolean)
      .map(Number);

  test('a timeout kills the program and what it started', async () => {
    const marker = `solstice-bounded-${process.pid}-t`;
    const err = await runBounded('sh', ['-c', `sleep 300 & sleep 301; : ${marker}`], {
      timeoutMs: 300,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChildProcessError);
    expect((err as ChildProcessError).reason).toBe('timeout');
    expect(childPids(marker).filter(alive)).toEqual([]);
    expect(liveChildGroups()).toEqual([]);
  });

  test('an abort (an activity cancelled) kills it too', async () => {
    const abort = new AbortController();
    const p = runBounded('sleep', ['300'], { timeoutMs: 60_000, signal: abort.signal });
    setTimeout(() => abort.abort(), 100);
    await expect(p).rejects.toMatchObject({ reason: 'aborted' });
    expect(liveChildGroups()).toEqual([]);
  });

  test('output past the cap stops it', async () => {
    await expect(runBounded('yes', [], { timeoutMs: 10_000, maxOutputBytes: 1000 })).rejects.toMatchObject({
      reason: 'output',
    });
    expect(existsSync('/')).toBe(true);
  });
});
