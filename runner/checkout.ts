/**
 * Checks out the job's exact commit with the system `git` (the base image must provide it; no
 * git library keeps the runner one small file).
 *
 * Fetching only the commit (`--depth=1 <sha>`) is fast but needs the server to allow fetching
 * an object by id; when it does not (protocol v0 servers, commits that are not a branch tip),
 * fall back to fetching every ref. git's output goes into the job log as SYSTEM lines.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { JobContext } from './job-context';
import { LineSplitter } from './log/lines';
import { redactUrlsInText } from '../model/redact-url';
import { localRepoPath } from '../model/repo-url';
import { gitAuthEnv } from '../model/git-auth-env';
import { ChildProcessError, runBounded } from '../platform/child-process';
import {
  borrowObjects,
  cacheHasCommit,
  fetchIntoCache,
  initCacheRepo,
  lockedGitArgs,
  repoCache,
  type CacheGit,
  type RepoCache,
} from './repo-cache';

/**
 * `missing-commit`: the repository was fetched and the commit is not in it (the user's
 * repository, so the job fails). `unavailable`: the repository could not be fetched or checked
 * out (host unreachable, credentials refused, the forge failing, git timing out): an
 * infrastructure error, never the script's failure.
 */
export type CheckoutResult =
  { ok: true } | { ok: false; kind: 'missing-commit' | 'unavailable'; message: string };

export interface CheckoutOptions {
  /**
   * An HTTP header (`Authorization: token …`) for fetches of the repository from its own
   * origin, from StartJob: given to git through its environment, never on a command line, in
   * a file or in the log.
   */
  authHeader?: string;
  /** How long a fetch that failed for a passing reason (the forge down) is retried; default 0. */
  retryForMs?: number;
  /** Waits between fetch attempts; default 1 s, doubling up to 15 s. */
  retryDelayMs?: (attempt: number) => number;
}

/** Writes one SYSTEM line to the job log. */
export type SystemLog = (text: string) => void;

/**
 * Transports git may use for the job's repository. Which hosts a job may fetch from is decided
 * before the runner (the webhook's host allow-list, planning's GIT_ALLOW_PROTOCOL); the runner
 * only refuses what is not a fetch from a server: `ext` runs a command, `fd` reads a
 * descriptor (and waits for ever), `file` reads the machine's own files, which only a
 * local-path repository (one planning was allowed to read) needs. `git` is there because the
 * qemu provider serves a local repository to its VM over git://; `http` because a forge may
 * serve plain http (the webhook accepts it).
 */
const NETWORK_GIT_PROTOCOLS = ['https', 'ssh', 'http', 'git'] as const;

export function checkoutGitProtocols(repoUrl: string): string[] {
  return localRepoPath(repoUrl) !== undefined
    ? [...NETWORK_GIT_PROTOCOLS, 'file']
    : [...NETWORK_GIT_PROTOCOLS];
}

/** How long one git may take: a fetch moves the repository; the rest is local work. */
export const CHECKOUT_GIT_TIMEOUT_MS = { fetch: 15 * 60_000, local: 2 * 60_000 } as const;

/** The environment for git: never the job token; never prompt for credentials (no one can answer). */
export function gitEnv(base: NodeJS.ProcessEnv, repoUrl?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, GIT_TERMINAL_PROMPT: '0' };
  delete env.SOLSTICE_JOB_TOKEN;
  if (repoUrl !== undefined) {
    env.GIT_ALLOW_PROTOCOL = checkoutGitProtocols(repoUrl).join(':');
    // The machine's own git configuration must not widen what the URL can do.
    env.GIT_CONFIG_NOSYSTEM = '1';
  }
  return env;
}

interface GitResult {
  code: number;
  /** Last lines git wrote, for error messages. */
  tail: string[];
}

/** A git that ran longer than its bound; checkout fails with this message. */
class GitTimeout extends Error {}

/** git's messages of a server it could not talk to at all (or that answered 5xx/429). */
const UNREACHABLE =
  /could not resolve host|failed to connect|couldn't connect|connection refused|connection timed out|operation timed out|timed out after|unable to look up|temporary failure in name resolution|network is unreachable|no route to host|the requested url returned error: (5\d\d|408|429)/i;

/** git's messages of a transfer cut off half-way (also what some servers say when they refuse). */
const CUT_OFF =
  /connection reset|empty reply from server|recv failure|remote end hung up unexpectedly|early eof|rpc failed/i;

/**
 * A fetch that may work if tried again: the server or the network failing, not the server
 * saying no (401/403/404, `repository not found`, a refused transport).
 */
export function isPassingFetchFailure(gitOutput: string[]): boolean {
  return gitOutput.some((l) => UNREACHABLE.test(l) || CUT_OFF.test(l));
}

const defaultRetryDelay = (attempt: number): number => Math.min(1000 * 2 ** (attempt - 1), 15_000);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * One git, in its own process group (its transport helpers die with it), with a timeout; the
 * signal (the runner stopping) kills the group too and rejects.
 */
async function runGit(
  args: string[],
  cwd: string,
  repoUrl: string,
  log: SystemLog,
  timeoutMs: number,
  signal?: AbortSignal,
  quiet = false,
  authHeader?: string,
  /** The host's repository cache: git runs in it, under its lock. */
  cache?: RepoCache,
): Promise<GitResult> {
  const tail: string[] = [];
  const onLine = (raw: string): void => {
    const line = redactUrlsInText(raw);
    if (!quiet) log(line);
    tail.push(line);
    if (tail.length > 5) tail.shift();
  };
  const out = new LineSplitter(onLine);
  const err = new LineSplitter(onLine);
  const flush = (): void => {
    out.end();
    err.end();
  };
  try {
    const env = gitEnv(process.env, repoUrl);
    await runBounded(cache ? 'flock' : 'git', cache ? lockedGitArgs(cache, args) : args, {
      cwd,
      env: authHeader ? gitAuthEnv(env, repoUrl, authHeader) : env,
      timeoutMs,
      signal,
      onData: (chunk, stream) => (stream === 'stdout' ? out : err).push(chunk),
    });
    flush();
    return { code: 0, tail };
  } catch (e) {
    flush();
    if (!(e instanceof ChildProcessError)) throw e;
    if (e.reason === 'exit' || e.reason === 'output') return { code: e.code ?? 1, tail };
    if (e.reason === 'timeout') throw new GitTimeout(`${e.message}: ${tail.join(' / ')}`);
    throw e;
  }
}

export async function checkout(
  ctx: JobContext,
  log: SystemLog,
  signal?: AbortSignal,
  opts: CheckoutOptions = {},
): Promise<CheckoutResult> {
  const repo = redactUrlsInText(ctx.repoUrl);
  const sha = ctx.commitSha;
  const cache = ctx.gitCacheDir ? repoCache(ctx.gitCacheDir, ctx.repoUrl) : undefined;
  /** A step worth showing: the command (as `show`, i.e. without credentials) and its output. */
  const git = async (
    args: string[],
    show: string[] = args,
    timeoutMs: number = CHECKOUT_GIT_TIMEOUT_MS.local,
    authHeader?: string,
  ): Promise<GitResult> => {
    log(`$ git ${show.join(' ')}`);
    return runGit(args, ctx.workdir, ctx.repoUrl, log, timeoutMs, signal, false, authHeader);
  };
  /** A git in the host's cache repository, under its lock; shown as the workdir's would be. */
  const cacheGit =
    (c: RepoCache): CacheGit<GitResult> =>
    async (args, step) => {
      if (!step.quiet) log(`$ git ${step.show.join(' ')}  # in the host's repository cache`);
      return runGit(
        args,
        ctx.workdir,
        ctx.repoUrl,
        log,
        step.fetch ? CHECKOUT_GIT_TIMEOUT_MS.fetch : CHECKOUT_GIT_TIMEOUT_MS.local,
        signal,
        step.quiet,
        step.fetch ? opts.authHeader : undefined,
        c,
      );
    };
  /** A check whose output only matters for the error message. */
  const gitQuiet = (args: string[]): Promise<GitResult> =>
    runGit(args, ctx.workdir, ctx.repoUrl, log, CHECKOUT_GIT_TIMEOUT_MS.local, signal, true);
  const fetchTimeout = CHECKOUT_GIT_TIMEOUT_MS.fetch;
  const unavailable = (message: string): CheckoutResult => ({ ok: false, kind: 'unavailable', message });
  const retryUntil = Date.now() + (opts.retryForMs ?? 0);
  const retryDelay = opts.retryDelayMs ?? defaultRetryDelay;

  /** The commit by id, else every ref (servers that refuse an unadvertised object). */
  const fetchOnce = async (): Promise<GitResult> => {
    // A server that cannot be reached will not serve the refs either.
    if (cache)
      return fetchIntoCache(ctx.repoUrl, sha, cacheGit(cache), {
        giveUp: (r) => r.tail.some((l) => UNREACHABLE.test(l)),
        log,
      });
    // "--" ends the options: the URL is data even if it looks like one (validated anyway).
    const fetchShallow = ['fetch', '--depth=1', '--no-tags', '--', ctx.repoUrl, sha];
    const r = await git(
      fetchShallow,
      ['fetch', '--depth=1', '--no-tags', '--', repo, sha],
      fetchTimeout,
      opts.authHeader,
    );
    // A server that cannot be reached will not serve the refs either.
    if (r.code === 0 || r.tail.some((l) => UNREACHABLE.test(l))) return r;
    log('The server did not serve the commit by id; fetching all refs instead');
    const fetchAll = ['fetch', '--no-tags', '--', ctx.repoUrl, '+refs/*:refs/solstice/*'];
    const all = await git(
      fetchAll,
      ['fetch', '--no-tags', '--', repo, '+refs/*:refs/solstice/*'],
      fetchTimeout,
      opts.authHeader,
    );
    // The second attempt says why it failed: the first one's refusal may read like a cut-off.
    return all;
  };

  try {
    await mkdir(ctx.workdir, { recursive: true });
    log(`Checking out ${repo} at ${sha} into ${ctx.workdir}`);
    // Re-running in a used workdir (a restarted runner) is fine: `git init` is idempotent.
    let r = await git(['init', '-q']);
    if (r.code !== 0) return unavailable(`git init failed in ${ctx.workdir}: ${r.tail.join(' / ')}`);

    let cached = false;
    if (cache) {
      cached = await cacheHasCommit(cache, sha);
      if (!cached) {
        r = await initCacheRepo(cache, cacheGit(cache));
        if (r.code !== 0)
          return unavailable(`git init of the host's repository cache failed: ${r.tail.join(' / ')}`);
      }
      await borrowObjects(path.join(ctx.workdir, '.git'), cache);
      if (cached) log(`The host's repository cache has ${sha}: nothing to fetch`);
    }

    // A forge that is down (restarting, a network blip) is waited for, within the runner's
    // retry window; a forge that says no (credentials, no such repository) is not asked again.
    for (let attempt = 1; !cached; attempt++) {
      r = await fetchOnce();
      if (r.code === 0) break;
      const why = r.tail.join(' / ') || `git exited with ${r.code}`;
      const wait = retryDelay(attempt);
      if (!isPassingFetchFailure(r.tail) || Date.now() + wait > retryUntil)
        return unavailable(`could not fetch repository ${repo}: ${why}`);
      log(`The repository is unreachable (${why}); trying again in ${Math.round(wait / 1000)} s`);
      await sleep(wait, signal);
    }

    r = await gitQuiet(['cat-file', '-e', `${sha}^{commit}`]);
    if (r.code !== 0)
      return {
        ok: false,
        kind: 'missing-commit',
        message: `commit ${sha} was not found in repository ${repo}`,
      };

    r = await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--force', '--detach', sha]);
    if (r.code !== 0)
      return unavailable(`could not check out commit ${sha} of ${repo}: ${r.tail.join(' / ')}`);
    r = await gitQuiet(['log', '-1', '--format=HEAD is now %H %s']);
    if (r.code === 0 && r.tail.length > 0) log(r.tail[r.tail.length - 1]);
    return { ok: true };
  } catch (err) {
    if (err instanceof GitTimeout) return unavailable(`checkout of ${repo} at ${sha}: ${err.message}`);
    if (err instanceof ChildProcessError && err.reason === 'spawn' && /ENOENT/.test(err.message)) {
      return unavailable(
        cache
          ? 'git or flock is not installed on this host; the host repository cache needs both (or set SOLSTICE_LOCAL_HOST_CACHE=false)'
          : 'git is not installed on this machine; the base image must provide git and /bin/sh',
      );
    }
    if (err instanceof ChildProcessError && err.reason === 'aborted') throw err;
    const e = err as Error;
    if (e.name === 'AbortError' || signal?.aborted) throw err;
    return unavailable(`checkout of ${repo} at ${sha} failed: ${e.message}`);
  }
}
