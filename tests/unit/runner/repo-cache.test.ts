/**
 * Issue 20: the local provider's host repository cache. Checkouts of one repository share a bare
 * repository on the host: a commit is fetched once, however many jobs ask at once, a new commit
 * brings only itself, and what a job does in its checkout never reaches another job's.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkout } from '../../../runner/checkout';
import type { JobContext } from '../../../runner/job-context';
import { commitRef, repoCache } from '../../../runner/repo-cache';
import { commitFiles, makeRepo, type TestRepo } from '../../support/git-repo';
import { jobContext } from '../../support/job-context';

let dir: string;
let cacheDir: string;
let repo: TestRepo;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-repo-cache-'));
  cacheDir = path.join(dir, 'cache');
  repo = makeRepo({ '.solstice/job.sh': 'true\n', README: 'one\n' });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(repo.dir, { recursive: true, force: true });
});

const context = (commitSha: string, name: string): JobContext =>
  jobContext({ repoUrl: repo.dir, commitSha, workdir: path.join(dir, name), gitCacheDir: cacheDir });

async function checkoutLogged(sha: string, name: string): Promise<{ ok: boolean; lines: string[] }> {
  const lines: string[] = [];
  const r = await checkout(context(sha, name), (l) => lines.push(l));
  return { ok: r.ok, lines };
}

const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

test('four jobs at once: one fetch into the cache, four checkouts of their own', async () => {
  const runs = await Promise.all([1, 2, 3, 4].map((i) => checkoutLogged(repo.sha, `first-${i}`)));
  expect(runs.map((r) => r.ok)).toEqual([true, true, true, true]);
  for (const [i, r] of runs.entries()) {
    expect(readFileSync(path.join(dir, `first-${i + 1}`, 'README'), 'utf8')).toBe('one\n');
    expect(r.lines.join('\n')).toContain(`HEAD is now ${repo.sha}`);
  }
  const cache = repoCache(cacheDir, repo.dir);
  expect(git(cache.dir, 'rev-parse', commitRef(repo.sha))).toBe(repo.sha);
  // Whoever came second waited for the first one's fetch and fetched nothing new.
  expect(
    readdirSync(path.join(cache.dir, 'objects', 'pack')).filter((f) => f.endsWith('.pack')),
  ).toHaveLength(1);
});

test('a commit the cache has is not fetched again; a new one is fetched alone', async () => {
  const again = await checkoutLogged(repo.sha, 'again');
  expect(again.ok).toBe(true);
  expect(again.lines.join('\n')).toContain('nothing to fetch');
  expect(again.lines.join('\n')).not.toContain('$ git fetch');

  const next = commitFiles(repo.dir, { README: 'two\n' });
  const fresh = await checkoutLogged(next, 'next');
  expect(fresh.ok).toBe(true);
  expect(fresh.lines.join('\n')).toContain('$ git fetch');
  expect(readFileSync(path.join(dir, 'next', 'README'), 'utf8')).toBe('two\n');
  // The whole history is there for the job (the cache is not shallow).
  expect(git(path.join(dir, 'next'), 'rev-list', '--count', 'HEAD')).toBe('2');
});

test("one job's changes to its checkout reach neither the cache nor another job", async () => {
  const a = path.join(dir, 'first-1');
  writeFileSync(path.join(a, 'README'), 'changed by job a\n');
  writeFileSync(path.join(a, 'stray'), 'x\n');
  const blob = git(a, 'hash-object', '-w', 'stray');
  git(a, 'update-ref', 'refs/heads/leak', repo.sha);

  const b = await checkoutLogged(repo.sha, 'isolated');
  expect(b.ok).toBe(true);
  const bDir = path.join(dir, 'isolated');
  expect(readFileSync(path.join(bDir, 'README'), 'utf8')).toBe('one\n');
  expect(existsSync(path.join(bDir, 'stray'))).toBe(false);
  expect(() => git(bDir, 'cat-file', '-e', blob)).toThrow();
  expect(() => git(bDir, 'rev-parse', '--verify', '-q', 'refs/heads/leak')).toThrow();
  expect(() => git(repoCache(cacheDir, repo.dir).dir, 'cat-file', '-e', blob)).toThrow();
});

test('a commit that is not in the repository fails the checkout as missing', async () => {
  const r = await checkout(context('0123456789abcdef0123456789abcdef01234567', 'missing'), () => undefined);
  expect(r).toMatchObject({ ok: false, kind: 'missing-commit' });
});
