/**
 * Issue 20: planning from the host's repository cache. With the local provider's cache on the
 * worker's host, a pipeline's commit is fetched into the cache's bare repository (as the runner's
 * checkout does, under the same lock) and read there: a commit already there is not fetched again,
 * and the checkout of the pipeline's job then fetches nothing.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  CommitUnreadableError,
  loadPipelinePlan,
  planInProcess,
  type PlanDeps,
  type PlanRequest,
} from '../../../activities/commit-plan';
import { JOB_SCRIPT_PATH, WORKFLOW_FILE_PATH } from '../../../model/job-definition-paths';
import { liveChildGroups } from '../../../platform/child-process';
import { checkout } from '../../../runner/checkout';
import type { JobContext } from '../../../runner/job-context';
import { commitRef, repoCache } from '../../../runner/repo-cache';
import { commitFiles, makeRepo, type TestRepo } from '../../support/git-repo';

let dir: string;
let cacheDir: string;
const repos: TestRepo[] = [];
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-plan-cache-'));
  cacheDir = path.join(dir, 'cache');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
afterAll(() => repos.forEach((r) => rmSync(r.dir, { recursive: true, force: true })));

function repo(files: Record<string, string>): TestRepo {
  const r = makeRepo(files);
  repos.push(r);
  return r;
}

const planTemps = () => readdirSync(os.tmpdir()).filter((n) => n.startsWith('solstice-plan-'));

const plan = (req: Partial<PlanRequest> & { repoUrl: string; commitSha: string }, deps: PlanDeps = {}) =>
  loadPipelinePlan(
    { event: 'push', label: 'local', gitProtocols: ['file'], ...req },
    { plan: planInProcess, gitCacheDir: cacheDir, actionsRunsOn: { local: ['ubuntu-latest'] }, ...deps },
  );

const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

const packs = (cacheRepo: string) =>
  readdirSync(path.join(cacheRepo, 'objects', 'pack')).filter((f) => f.endsWith('.pack'));

/** The source repository is gone: whatever still works did not fetch. */
function unreachable(r: TestRepo): () => void {
  const away = `${r.dir}.away`;
  renameSync(r.dir, away);
  return () => renameSync(away, r.dir);
}

const jobContext = (r: TestRepo, sha: string, workdir: string): JobContext => ({
  jobId: 'j',
  token: 't',
  contactAddr: '127.0.0.1:1',
  repoUrl: r.dir,
  commitSha: sha,
  workdir,
  gitCacheDir: cacheDir,
  heartbeatIntervalMs: 15_000,
  retryForMs: 0,
  env: {},
  secrets: {},
  artifacts: [],
  timeoutMs: 0,
});

test('the commit is fetched into the cache once: a second plan and the job checkout fetch nothing', async () => {
  const r = repo({ [JOB_SCRIPT_PATH]: 'true\n', README: 'one\n' });
  const temps = planTemps();
  expect(await plan({ repoUrl: r.dir, commitSha: r.sha })).toMatchObject({ definition: JOB_SCRIPT_PATH });
  const cache = repoCache(cacheDir, r.dir);
  expect(git(cache.dir, 'rev-parse', commitRef(r.sha))).toBe(r.sha);
  // Read in the bare repository: no folder of its own, no working tree.
  expect(planTemps()).toEqual(temps);
  expect(git(cache.dir, 'rev-parse', '--is-bare-repository')).toBe('true');

  const back = unreachable(r);
  try {
    expect(await plan({ repoUrl: r.dir, commitSha: r.sha })).toMatchObject({ definition: JOB_SCRIPT_PATH });
    // The runner's checkout of the pipeline's job, on the same host, finds it there too.
    const lines: string[] = [];
    const workdir = path.join(dir, 'job');
    const result = await checkout(jobContext(r, r.sha, workdir), (l) => lines.push(l));
    expect(result).toEqual({ ok: true });
    expect(lines.join('\n')).toContain(`The host's repository cache has ${r.sha}: nothing to fetch`);
    expect(lines.join('\n')).not.toContain('$ git fetch');
    expect(readFileSync(path.join(workdir, 'README'), 'utf8')).toBe('one\n');
  } finally {
    back();
  }
  expect(packs(cache.dir)).toHaveLength(1);
  expect(liveChildGroups()).toEqual([]);
});

test('a new commit of a cached repository brings only what is new, with its history', async () => {
  const r = repo({ [WORKFLOW_FILE_PATH]: 'job "one" { step "x" run="true" }\n' });
  await plan({ repoUrl: r.dir, commitSha: r.sha });
  const next = commitFiles(r.dir, { [WORKFLOW_FILE_PATH]: 'job "two" { step "x" run="true" }\n' });
  expect(await plan({ repoUrl: r.dir, commitSha: next })).toMatchObject({ jobs: [{ name: 'two' }] });
  const cache = repoCache(cacheDir, r.dir);
  expect(git(cache.dir, 'rev-list', '--count', commitRef(next))).toBe('2');
  // Not shallow: the jobs that borrow its objects see the whole history.
  expect(existsSync(path.join(cache.dir, 'shallow'))).toBe(false);
  expect(packs(cache.dir)).toHaveLength(2);
});

test("a push's paths filters diff through the cache; before is kept there too", async () => {
  const job = `jobs:\n  j:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n`;
  const r = repo({
    '.forgejo/workflows/src.yml': `on:\n  push:\n    paths: ['src/**']\n${job}`,
    '.forgejo/workflows/always.yml': `on: push\n${job}`,
    'src/a.ts': '1',
    'docs/index.md': '1',
  });
  const docs = commitFiles(r.dir, { 'docs/index.md': '2' });
  const code = commitFiles(r.dir, { 'src/a.ts': '2' });
  const names = async (beforeSha: string, sha: string) =>
    (await plan({ repoUrl: r.dir, commitSha: sha, ref: 'refs/heads/main', beforeSha })).jobs
      .map((j) => j.name)
      .sort();
  expect(await names(r.sha, docs)).toEqual(['always/j']);
  expect(await names(docs, code)).toEqual(['always/j', 'src/j']);
  const cache = repoCache(cacheDir, r.dir);
  for (const sha of [r.sha, docs, code]) expect(git(cache.dir, 'rev-parse', commitRef(sha))).toBe(sha);
  // Every commit and its before are in the cache now: the same plans need no server.
  const back = unreachable(r);
  try {
    expect(await names(r.sha, docs)).toEqual(['always/j']);
    expect(await names(r.sha, code)).toEqual(['always/j', 'src/j']);
    // A before the repository does not have: every filter matches, as without a cache.
    expect(await names('1'.repeat(40), docs)).toEqual(['always/j', 'src/j']);
  } finally {
    back();
  }
});

test('plans of one commit at once: all read it, the cache fetched it once and stays whole', async () => {
  const r = repo({ [JOB_SCRIPT_PATH]: 'true\n' });
  const plans = await Promise.all([1, 2, 3, 4].map(() => plan({ repoUrl: r.dir, commitSha: r.sha })));
  expect(plans.map((p) => p.definition)).toEqual(Array(4).fill(JOB_SCRIPT_PATH));
  const cache = repoCache(cacheDir, r.dir);
  // Whoever came second waited on the lock for the first one's fetch and got nothing new.
  expect(packs(cache.dir)).toHaveLength(1);
  git(cache.dir, 'fsck', '--no-progress', '--strict');
  expect(git(cache.dir, 'for-each-ref', '--format=%(refname)')).toBe(commitRef(r.sha));
  expect(liveChildGroups()).toEqual([]);
});

test('a commit that cannot be fetched or read fails as it does without a cache', async () => {
  const r = repo({ [JOB_SCRIPT_PATH]: 'true\n' });
  const unreadable = await plan({ repoUrl: r.dir, commitSha: 'f'.repeat(40) }).catch((e: unknown) => e);
  expect(unreadable).toBeInstanceOf(CommitUnreadableError);
  expect((unreadable as Error).message).toMatch(/^cannot read commit ffffffffffff in the fetched repository/);
  // Not kept under a ref: the next plan asks the server again.
  expect(existsSync(path.join(repoCache(cacheDir, r.dir).dir, commitRef('f'.repeat(40))))).toBe(false);

  const gone = await plan({ repoUrl: '/nonexistent/solstice-repo', commitSha: 'f'.repeat(40) }).catch(
    (e: unknown) => e,
  );
  expect((gone as Error).message).toMatch(/^cannot fetch \/nonexistent\/solstice-repo: /);

  // GIT_ALLOW_PROTOCOL still applies with the cache, even to a commit it has (an operator's
  // enqueue fetched it): a forge's URL is no path on the host.
  await plan({ repoUrl: r.dir, commitSha: r.sha });
  const local = await plan({ repoUrl: r.dir, commitSha: r.sha, gitProtocols: ['https', 'ssh'] }).catch(
    (e: unknown) => e,
  );
  expect((local as Error).message).toMatch(/cannot fetch .*transport 'file' not allowed/);
});

test('a cache folder the worker cannot use says so, not that the repository is unreachable', async () => {
  const r = repo({ [JOB_SCRIPT_PATH]: 'true\n' });
  writeFileSync(cacheDir, 'a file where the folder should be\n');
  const err = await plan({ repoUrl: r.dir, commitSha: r.sha }).catch((e: unknown) => e);
  expect((err as Error).message).toMatch(
    /^cannot use the host's repository cache .* for planning \(.+\): the worker needs git, flock and write access/,
  );
});

test("the cache busy past planning's bound: the commit is planned from a folder of its own", async () => {
  const r = repo({ [JOB_SCRIPT_PATH]: 'true\n' });
  const cache = repoCache(cacheDir, r.dir);
  mkdirSync(cacheDir, { recursive: true });
  // Another fetch into the cache (a large repository's first) holds its lock past planning's
  // bound for a git under the lock: the same as the cache's own fetch taking that long.
  const holder = spawn('flock', [cache.lock, 'sleep', '60'], { stdio: 'ignore', detached: true });
  try {
    await waitForLock(cache.lock);
    const temps = planTemps();
    const started = Date.now();
    expect(
      await plan({ repoUrl: r.dir, commitSha: r.sha }, { gitTimeoutMs: { fetch: 20_000, read: 3_000 } }),
    ).toMatchObject({ definition: JOB_SCRIPT_PATH });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(planTemps()).toEqual(temps);
    expect(existsSync(path.join(cache.dir, commitRef(r.sha)))).toBe(false);
    expect(liveChildGroups()).toEqual([]);
  } finally {
    // Its group: flock and the sleep it runs.
    process.kill(-holder.pid!, 'SIGKILL');
  }
});

/** Until someone holds `lock` (flock -n fails while it is held). */
async function waitForLock(lock: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync('flock', ['-n', lock, 'true']);
    } catch {
      return;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`nobody took ${lock}`);
}

describe("the forge's token through the cache", () => {
  /** An http "forge" that takes the request and never answers: git waits in its fetch. */
  async function silentForge(): Promise<{ url: string; auth: Promise<string>; close(): Promise<void> }> {
    let gotAuth!: (a: string) => void;
    const auth = new Promise<string>((res) => (gotAuth = res));
    const server = http.createServer((req) => gotAuth(req.headers.authorization ?? ''));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/o/r.git`,
      auth,
      close: () => {
        server.closeAllConnections();
        return new Promise((res) => server.close(() => res()));
      },
    };
  }
  const cmdlines = () =>
    readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map((e) => {
        try {
          return readFileSync(`/proc/${e}/cmdline`).toString().replace(/\0/g, ' ');
        } catch {
          return '';
        }
      });

  test('reaches the forge in a header from git’s environment, never on a command line', async () => {
    const forge = await silentForge();
    const token = 's3cr3t-plan-cache-token';
    try {
      const planned = plan(
        { repoUrl: forge.url, commitSha: 'f'.repeat(40), gitProtocols: ['http'] },
        { authHeader: `Authorization: token ${token}`, gitTimeoutMs: { fetch: 2_000, read: 2_000 } },
      ).catch((e: unknown) => e);
      expect(await forge.auth).toBe(`token ${token}`);
      const running = cmdlines();
      // The fetch waiting on the forge is the cache's, under its lock.
      expect(
        running.some((c) => c.startsWith('flock ') && c.includes(cacheDir) && c.includes(forge.url)),
      ).toBe(true);
      expect(running.filter((c) => c.includes(token))).toEqual([]);
      const err = await planned;
      // Past its bound the cache's fetch is given up for a fetch of the commit alone; bounded too.
      expect((err as Error).message).toMatch(/^cannot fetch .*took longer than 2000 ms and was stopped/);
      expect((err as Error).message).not.toContain(token);
      expect(liveChildGroups()).toEqual([]);
    } finally {
      await forge.close();
    }
  }, 30_000);
});
