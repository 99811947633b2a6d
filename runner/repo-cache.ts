/**
 * The host's repository cache (local provider only: SOLSTICE_GIT_CACHE, a folder its machines
 * share). One bare repository per repository URL keeps every commit a job of this host fetched,
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
