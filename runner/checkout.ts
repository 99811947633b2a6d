/**
 * Checks out the job's exact commit with the system `git` (the base image must provide it; no
 * git library keeps the runner one small file).
 *
 * Fetching only the commit (`--depth=1 <sha>`) is fast but needs the server to allow fetching
 * an object by id; when it does not (protocol v0 servers, commits that are not a branch tip),
 * fall back to fetching every ref. git's output goes into the job log as SYSTEM lines.
 */
import { mkdir } from 'node:fs/promises';
import type { JobContext } from './job-context';
import { LineSplitter } from './log/lines';
import { redactUrlsInText } from '../model/redact-url';
import { localRepoPath } from '../model/repo-url';
import { ChildProcessError, runBounded } from '../platform/child-process';

export type CheckoutResult = { ok: true } | { ok: false; message: string };

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
    await runBounded('git', args, {
      cwd,
      env: gitEnv(process.env, repoUrl),
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
): Promise<CheckoutResult> {
  const repo = redactUrlsInText(ctx.repoUrl);
  const sha = ctx.commitSha;
  /** A step worth showing: the command (as `show`, i.e. without credentials) and its output. */
  const git = async (
    args: string[],
    show: string[] = args,
    timeoutMs: number = CHECKOUT_GIT_TIMEOUT_MS.local,
  ): Promise<GitResult> => {
    log(`$ git ${show.join(' ')}`);
    return runGit(args, ctx.workdir, ctx.repoUrl, log, timeoutMs, signal);
  };
  /** A check whose output only matters for the error message. */
  const gitQuiet = (args: string[]): Promise<GitResult> =>
    runGit(args, ctx.workdir, ctx.repoUrl, log, CHECKOUT_GIT_TIMEOUT_MS.local, signal, true);
  const fetchTimeout = CHECKOUT_GIT_TIMEOUT_MS.fetch;

  try {
    await mkdir(ctx.workdir, { recursive: true });
    log(`Checking out ${repo} at ${sha} into ${ctx.workdir}`);
    // Re-running in a used workdir (a restarted runner) is fine: `git init` is idempotent.
    let r = await git(['init', '-q']);
    if (r.code !== 0)
      return { ok: false, message: `git init failed in ${ctx.workdir}: ${r.tail.join(' / ')}` };

    // "--" ends the options: the URL is data even if it looks like one (validated anyway).
    const fetchShallow = ['fetch', '--depth=1', '--no-tags', '--', ctx.repoUrl, sha];
    r = await git(fetchShallow, ['fetch', '--depth=1', '--no-tags', '--', repo, sha], fetchTimeout);
    if (r.code !== 0) {
      log('The server did not serve the commit by id; fetching all refs instead');
      const fetchAll = ['fetch', '--no-tags', '--', ctx.repoUrl, '+refs/*:refs/solstice/*'];
      r = await git(fetchAll, ['fetch', '--no-tags', '--', repo, '+refs/*:refs/solstice/*'], fetchTimeout);
      if (r.code !== 0) {
        return {
          ok: false,
          message: `could not fetch repository ${repo}: ${r.tail.join(' / ') || `git exited with ${r.code}`}`,
        };
      }
    }

    r = await gitQuiet(['cat-file', '-e', `${sha}^{commit}`]);
    if (r.code !== 0) return { ok: false, message: `commit ${sha} was not found in repository ${repo}` };

    r = await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--force', '--detach', sha]);
    if (r.code !== 0) {
      return { ok: false, message: `could not check out commit ${sha} of ${repo}: ${r.tail.join(' / ')}` };
    }
    r = await gitQuiet(['log', '-1', '--format=HEAD is now %H %s']);
    if (r.code === 0 && r.tail.length > 0) log(r.tail[r.tail.length - 1]);
    return { ok: true };
  } catch (err) {
    if (err instanceof GitTimeout)
      return { ok: false, message: `checkout of ${repo} at ${sha}: ${err.message}` };
    if (err instanceof ChildProcessError && err.reason === 'spawn' && /ENOENT/.test(err.message)) {
      return {
        ok: false,
        message: 'git is not installed on this machine; the base image must provide git and /bin/sh',
      };
    }
    if (err instanceof ChildProcessError && err.reason === 'aborted') throw err;
    const e = err as Error;
    if (e.name === 'AbortError') throw err;
    return { ok: false, message: `checkout of ${repo} at ${sha} failed: ${e.message}` };
  }
}
