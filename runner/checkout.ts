/**
 * Checks out the job's exact commit with the system `git` (the base image must provide it; no
 * git library keeps the runner one small file).
 *
 * Fetching only the commit (`--depth=1 <sha>`) is fast but needs the server to allow fetching
 * an object by id; when it does not (protocol v0 servers, commits that are not a branch tip),
 * fall back to fetching every ref. git's output goes into the job log as SYSTEM lines.
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import type { JobContext } from './job-context';
import { LineSplitter } from './log/lines';
import { redactUrlsInText } from '../model/redact-url';

export type CheckoutResult = { ok: true } | { ok: false; message: string };

/** Writes one SYSTEM line to the job log. */
export type SystemLog = (text: string) => void;

/** The environment for git: never the job token; never prompt for credentials (no one can answer). */
export function gitEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, GIT_TERMINAL_PROMPT: '0' };
  delete env.SOLSTICE_JOB_TOKEN;
  return env;
}

interface GitResult {
  code: number;
  /** Last lines git wrote, for error messages. */
  tail: string[];
}

function runGit(
  args: string[],
  cwd: string,
  log: SystemLog,
  signal?: AbortSignal,
  quiet = false,
): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd,
      env: gitEnv(process.env),
      stdio: ['ignore', 'pipe', 'pipe'],
      signal,
    });
    const tail: string[] = [];
    const onLine = (raw: string): void => {
      const line = redactUrlsInText(raw);
      if (!quiet) log(line);
      tail.push(line);
      if (tail.length > 5) tail.shift();
    };
    const out = new LineSplitter(onLine);
    const err = new LineSplitter(onLine);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code, sig) => {
      out.end();
      err.end();
      resolve({ code: code ?? (sig ? 128 : 1), tail });
    });
  });
}

export async function checkout(
  ctx: JobContext,
  log: SystemLog,
  signal?: AbortSignal,
): Promise<CheckoutResult> {
  const repo = redactUrlsInText(ctx.repoUrl);
  const sha = ctx.commitSha;
  /** A step worth showing: the command (as `show`, i.e. without credentials) and its output. */
  const git = async (args: string[], show: string[] = args): Promise<GitResult> => {
    log(`$ git ${show.join(' ')}`);
    return runGit(args, ctx.workdir, log, signal);
  };
  /** A check whose output only matters for the error message. */
  const gitQuiet = (args: string[]): Promise<GitResult> => runGit(args, ctx.workdir, log, signal, true);

  try {
    await mkdir(ctx.workdir, { recursive: true });
    log(`Checking out ${repo} at ${sha} into ${ctx.workdir}`);
    // Re-running in a used workdir (a restarted runner) is fine: `git init` is idempotent.
    let r = await git(['init', '-q']);
    if (r.code !== 0)
      return { ok: false, message: `git init failed in ${ctx.workdir}: ${r.tail.join(' / ')}` };

    // "--" ends the options: the URL is data even if it looks like one (validated anyway).
    const fetchShallow = ['fetch', '--depth=1', '--no-tags', '--', ctx.repoUrl, sha];
    r = await git(fetchShallow, ['fetch', '--depth=1', '--no-tags', '--', repo, sha]);
    if (r.code !== 0) {
      log('The server did not serve the commit by id; fetching all refs instead');
      const fetchAll = ['fetch', '--no-tags', '--', ctx.repoUrl, '+refs/*:refs/solstice/*'];
      r = await git(fetchAll, ['fetch', '--no-tags', '--', repo, '+refs/*:refs/solstice/*']);
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
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' && e.syscall?.startsWith('spawn')) {
      return {
        ok: false,
        message: 'git is not installed on this machine; the base image must provide git and /bin/sh',
      };
    }
    if (e.name === 'AbortError') throw err;
    return { ok: false, message: `checkout of ${repo} at ${sha} failed: ${e.message}` };
  }
}
