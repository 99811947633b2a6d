/**
 * The host's repository cache (local provider only: SOLSTICE_GIT_CACHE, a folder its machines
 * share; the orchestrator worker of the same host plans pipelines from it too, activities/commit-plan.ts). One bare repository per repository URL keeps every commit a job of this host fetched,
 * each under refs/solstice/commits/<sha>, so nothing in it is ever unreachable. A job's workdir
 * is its own repository that borrows the cache's objects (objects/info/alternates): its index,
 * refs, configuration, working tree and any object it writes stay in its own folder, so nothing
 * one job does in its checkout reaches another job.
 *
 * Fetches into a cache repository hold its lock (flock(1) on <repo>.lock: the kernel lets go
 * when the holder dies, so a runner killed mid-fetch leaves no stale lock). Reading needs no
 * lock: a commit's ref is written only after git has every object it reaches, and objects are
 * never removed (gc.auto=0; packs are kept whole, so no half-unpacked commit is ever seen).
 */
import { createHash } from 'node:crypto';
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { redactUrlsInText } from '../model/redact-url';

export interface RepoCache {
  /** The bare repository: where fetches go. */
  dir: string;
  /** The file flock(1) takes to change the repository. */
  lock: string;
  /** Options every git in the cache repository gets. */
  config: string[];
}

/** git options for the cache: never pruned (jobs borrow its objects), fetched objects kept as packs. */
const CACHE_CONFIG = ['-c', 'gc.auto=0', '-c', 'fetch.unpackLimit=1', '-c', 'transfer.unpackLimit=1'];

export function repoCache(cacheDir: string, repoUrl: string): RepoCache {
  // By URL: a repository is fetched with the same credentials whichever job asks.
  const key = createHash('sha256').update(repoUrl).digest('hex').slice(0, 32);
  const dir = path.join(cacheDir, `${key}.git`);
  return { dir, lock: `${dir}.lock`, config: CACHE_CONFIG };
}

/** The ref a fetched commit is kept under, so the cache never loses it. */
export function commitRef(sha: string): string {
  return `refs/solstice/commits/${sha}`;
}

/** Whether the cache already holds `sha` with everything it reaches (a loose ref; gc never packs them). */
export async function cacheHasCommit(cache: RepoCache, sha: string): Promise<boolean> {
  return access(path.join(cache.dir, commitRef(sha))).then(
    () => true,
    () => false,
  );
}

/** Makes the workdir's repository (already `git init`ed) see the cache's objects. */
export async function borrowObjects(gitDir: string, cache: RepoCache): Promise<void> {
  const info = path.join(gitDir, 'objects', 'info');
  await mkdir(info, { recursive: true });
  await writeFile(path.join(info, 'alternates'), `${path.join(cache.dir, 'objects')}\n`);
}

/** flock(1)'s arguments that run `git args` in the cache repository while holding its lock. */
export function lockedGitArgs(cache: RepoCache, args: readonly string[]): string[] {
  return [cache.lock, 'git', ...cache.config, '-C', cache.dir, ...args];
}

/** What one git in the cache repository came to: its exit code and its last lines, for messages. */
export interface CacheGitResult {
  code: number;
  tail: string[];
}

/**
 * Runs one git in the cache repository under its lock (lockedGitArgs), as its caller runs git:
 * the runner logs it into the job, planning keeps it quiet. `show` is the command as a log may
 * print it (the URL redacted); `fetch`: it talks to the repository's server (the fetch bound and
 * the forge's credentials apply); `quiet`: its output only matters for an error message.
 */
export type CacheGit<R extends CacheGitResult> = (
  args: string[],
  step: { show: string[]; fetch: boolean; quiet?: boolean },
) => Promise<R>;

/** Makes the cache repository: idempotent, and under the lock, since two first fetches may race. */
export async function initCacheRepo<R extends CacheGitResult>(
  cache: RepoCache,
  git: CacheGit<R>,
): Promise<R> {
  await mkdir(cache.dir, { recursive: true });
  return git(['init', '-q', '--bare'], { show: ['init', '-q', '--bare'], fetch: false });
}

export interface CacheFetchOptions<R extends CacheGitResult> {
  /** A failed fetch by id after which every ref is not worth asking for (the server cannot be reached). */
  giveUp: (r: R) => boolean;
  /** Says that the fallback happens (the job log); absent: nothing is said. */
  log?: (text: string) => void;
}

/**
 * Fetches `sha` into the cache repository `git` runs in: the commit by id with its history (what the cache has
 * already is not sent again), kept under its own ref; when the server does not serve an
 * unadvertised commit, every ref, and the commit's ref made after. When the commit is not among
 * them either, that is the caller's to say (its read of the commit fails); the ref is not made.
 * The result is the last fetch's.
 */
export async function fetchIntoCache<R extends CacheGitResult>(
  repoUrl: string,
  sha: string,
  git: CacheGit<R>,
  opts: CacheFetchOptions<R>,
): Promise<R> {
  const repo = redactUrlsInText(repoUrl);
  const dst = `${sha}:${commitRef(sha)}`;
  // "--" ends the options: the URL is data even if it looks like one (validated anyway).
  const r = await git(['fetch', '--no-tags', '--', repoUrl, dst], {
    show: ['fetch', '--no-tags', '--', repo, dst],
    fetch: true,
  });
  if (r.code === 0 || opts.giveUp(r)) return r;
  opts.log?.('The server did not serve the commit by id; fetching all refs instead');
  const all = await git(['fetch', '--no-tags', '--', repoUrl, '+refs/*:refs/solstice/all/*'], {
    show: ['fetch', '--no-tags', '--', repo, '+refs/*:refs/solstice/all/*'],
    fetch: true,
  });
  if (all.code !== 0) return all;
  const ref = ['update-ref', commitRef(sha), sha];
  await git(ref, { show: ref, fetch: false, quiet: true });
  return all;
}
