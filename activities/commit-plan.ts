/**
 * Reads what a pipeline runs at its commit with the system git (remote repositories as local
 * paths, never a worker's own files), reads the definition files plan-definitions.ts knows, and
 * plans them in a worker thread. Where the commit comes from:
 *
 * - With the host's repository cache (runner/repo-cache.ts: the local provider's, on this same
 *   host), the commit is fetched into its bare repository, as the runner's checkout does, and the
 *   files are read there (`ls-tree`, `show`; no working tree): a commit the cache has is not
 *   fetched at all, a new one brings only what is new, and the checkout of the pipeline's jobs
 *   then finds it there.
 * - Without one, or when the cache's first fetch of a repository (its whole history) does not fit
 *   in planning's bound, the commit alone is fetched into a temporary folder.
 *
 * Every git has a timeout, runs in its own process group and dies with the activity; the activity
 * heartbeats while it waits, so a cancellation reaches it; a temporary folder goes on every path.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { JobSource, PipelineEvent, PipelinePlan } from '../model/domain';
import { ACTIONS_WORKFLOW_DIRS } from '../model/job-definition-paths';
import { SolsticeError } from '../platform/errors';
import { ChildProcessError, runBounded } from '../platform/child-process';
import { redactUrlsInText } from '../model/redact-url';
import { gitAuthEnv } from '../model/git-auth-env';
import { gitTransportOf } from '../model/repo-url';
import { WORKFLOW_FILE_LIMITS } from '../workflow-file';
import {
  cacheHasCommit,
  fetchIntoCache,
  initCacheRepo,
  lockedGitArgs,
  repoCache,
  type CacheGit,
  type CacheGitResult,
  type RepoCache,
} from '../runner/repo-cache';
import { choosePlanner, DEFINITION_PATHS, planDefinitions, type PlanTrigger } from './plan-definitions';
import { planOffThread } from './plan-thread';

/**
 * Git could not read the fetched commit (it is not there, or git itself failed). Not the user's
 * error, unlike a commit without a job definition: a plain Error, so the activity is retried.
 */
export class CommitUnreadableError extends SolsticeError {}

/** Transports git may use for a repository of a forge; `file` only when an operator asked. */
export const FORGE_GIT_PROTOCOLS = ['https', 'ssh'] as const;

export const GIT_TIMEOUT_MS = { fetch: 120_000, read: 30_000 } as const;

export interface PlanRequest {
  /** Where the run came from: a forge's repository is fetched with that forge's token. */
  source?: JobSource;
  repoUrl: string;
  commitSha: string;
  ref?: string;
  event: PipelineEvent;
  /** runs-on of a job.sh pipeline's one job. */
  label: string;
  /** GIT_ALLOW_PROTOCOL for this repository; unset: FORGE_GIT_PROTOCOLS. */
  gitProtocols?: string[];
  /** `solstice enqueue --workflow F --input k=v`: run Actions workflow F as workflow_dispatch. */
  dispatch?: { workflow: string; inputs: Record<string, string> };
  /** A push: what its branch pointed at before (Actions `paths` filters diff against it). */
  beforeSha?: string;
}

export interface PlanDeps {
  /** How the definition files become a plan: off the event loop unless a test says otherwise. */
  plan?: (
    files: Record<string, string>,
    trigger: PlanTrigger,
    signal: AbortSignal,
  ) => Promise<PipelinePlan | undefined>;
  /** SOLSTICE_ACTIONS_RUNS_ON; absent: its default. */
  actionsRunsOn?: Record<string, string[]>;
  /** HTTP header for fetching the repository (its forge's token); absent: anonymous. */
  authHeader?: string;
  /** Bounds of each git; absent: GIT_TIMEOUT_MS (a test shortens them to see one crossed). */
  gitTimeoutMs?: { fetch: number; read: number };
  /**
   * The folder of this host's repository cache (SOLSTICE_GIT_CACHE of its local machines), when
   * the worker shares one with them: workers/orchestrator.ts sets it from the configuration, never
   * from the activity's input. Absent: every plan fetches into a temporary folder.
   */
  gitCacheDir?: string;
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr?.trim() || e.message || String(err)).split('\n')[0];
}

/** The activity's context when there is one (unit tests call this directly). */
function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

export async function loadPipelinePlan(req: PlanRequest, deps: PlanDeps = {}): Promise<PipelinePlan> {
  const ctx = activityContext();
  const abort = new AbortController();
  // Cancellation reaches an activity through its heartbeat: beat while git and the thread work.
  const beat = ctx ? setInterval(() => ctx.heartbeat(), 2_000) : undefined;
  ctx?.cancelled.catch(() => abort.abort());
  const signal = abort.signal;
  const protocols = req.gitProtocols ?? [...FORGE_GIT_PROTOCOLS];
  const base = {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ALLOW_PROTOCOL: protocols.join(':'),
    // A worker's own git configuration must not widen what a repository URL can do.
    GIT_CONFIG_NOSYSTEM: '1',
  };
  // Through the environment, sent to the repository's own origin only: never in a URL or an
  // argument that an error message, a span or the history could show.
  const env = deps.authHeader ? gitAuthEnv(base, req.repoUrl, deps.authHeader) : base;
  const timeouts = deps.gitTimeoutMs ?? GIT_TIMEOUT_MS;
  const run: RunGit = (cmd, args, cwd, runEnv, timeoutMs, maxOutputBytes) =>
    runBounded(cmd, args, { cwd, env: runEnv, timeoutMs, signal, maxOutputBytes });
  const fetchEnv = { all: env, local: base };
  let source: CommitSource | undefined;
  try {
    // Only for a repository this plan may fetch: a commit the cache has is read without asking
    // the server, so git would not refuse the transport (a local path an operator enqueued once
    // must stay unreadable to a forge's delivery). Otherwise git's own refusal, as without a cache.
    if (deps.gitCacheDir && protocols.includes(gitTransportOf(req.repoUrl)))
      source = await fromCache(repoCache(deps.gitCacheDir, req.repoUrl), req, run, fetchEnv, timeouts);
    source ??= await fromTempFolder(req, run, env, timeouts);
    const { git } = source;
    const files = await readDefinitions(git, req.commitSha, timeouts.read);
    const changedFiles = needsChangedFiles(req, files)
      ? await pushChangedFiles(source, req.beforeSha, req.commitSha, signal, timeouts)
      : undefined;
    const trigger: PlanTrigger = {
      ref: req.ref,
      event: req.event,
      label: req.label,
      sha: req.commitSha,
      repoUrl: req.repoUrl,
      ...(req.dispatch ? { dispatch: req.dispatch } : {}),
      ...(changedFiles ? { changedFiles } : {}),
      ...(deps.actionsRunsOn ? { actionsRunsOn: deps.actionsRunsOn } : {}),
    };
    const plan = await (deps.plan ?? ((f, t, s) => planOffThread(f, t, { signal: s })))(
      files,
      trigger,
      signal,
    );
    if (plan) return plan;
    throw ApplicationFailure.nonRetryable(
      `commit ${req.commitSha.slice(0, 12)} has none of ${DEFINITION_PATHS.join(', ')}`,
      'NoJobDefinition',
    );
  } finally {
    if (beat) clearInterval(beat);
    abort.abort();
    await source?.close();
  }
}

type RunGit = (
  cmd: 'git' | 'flock',
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  maxOutputBytes?: number,
) => Promise<string>;

/** Where the commit was fetched to: a git that reads there, a fetch of one more commit, and its cleanup. */
interface CommitSource {
  git: Git;
  /** Fetches another commit of the repository next to it (a push's before); throws as git does. */
  fetchAlso(sha: string): Promise<void>;
  close(): Promise<void>;
}

/** The commit alone (`--depth=1`) in a folder of its own, removed by close(). */
async function fromTempFolder(
  req: PlanRequest,
  run: RunGit,
  env: NodeJS.ProcessEnv,
  timeouts: { fetch: number; read: number },
): Promise<CommitSource> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'solstice-plan-'));
  const git: Git = (args, timeoutMs, maxOutputBytes) => run('git', args, dir, env, timeoutMs, maxOutputBytes);
  const fetchShallow = (sha: string) =>
    git(['fetch', '-q', '--depth=1', '--no-tags', '--', req.repoUrl, sha], timeouts.fetch);
  const source: CommitSource = {
    git,
    fetchAlso: async (sha) => void (await fetchShallow(sha)),
    close: () => rm(dir, { recursive: true, force: true }),
  };
  try {
    await git(['init', '-q'], timeouts.read);
    try {
      await fetchShallow(req.commitSha);
    } catch (first) {
      if (first instanceof ChildProcessError && first.reason !== 'exit') throw fetchError(req, first);
      // Some servers refuse fetching an unadvertised commit by id: fetch everything instead.
      try {
        await git(
          ['fetch', '-q', '--no-tags', '--', req.repoUrl, '+refs/*:refs/remotes/src/*'],
          timeouts.fetch,
        );
      } catch (err) {
        throw fetchError(req, err);
      }
    }
    return source;
  } catch (err) {
    await source.close();
    throw err;
  }
}

/** A git in the cache that exited non-zero; what it said is kept for the error message. */
interface PlanGitResult extends CacheGitResult {
  error?: ChildProcessError;
}

/**
 * The commit in the host's repository cache, fetched there under its lock when it is not there
 * yet; read in place (reads need no lock: runner/repo-cache.ts). Undefined: a git under the
 * cache's lock took longer than planning's bound (a large repository's first fetch brings its
 * whole history, ours or another's that holds the lock), so the caller plans from a temporary
 * folder instead and the checkout, with its longer bound, fills the cache.
 */
async function fromCache(
  cache: RepoCache,
  req: PlanRequest,
  run: RunGit,
  env: { all: NodeJS.ProcessEnv; local: NodeJS.ProcessEnv },
  timeouts: { fetch: number; read: number },
): Promise<CommitSource | undefined> {
  const cwd = path.dirname(cache.dir);
  // The forge's credentials go only with a fetch, as in the runner's checkout.
  const cacheGit: CacheGit<PlanGitResult> = async (args, step) => {
    try {
      await run(
        'flock',
        lockedGitArgs(cache, args),
        cwd,
        step.fetch ? env.all : env.local,
        step.fetch ? timeouts.fetch : timeouts.read,
      );
      return { code: 0, tail: [] };
    } catch (err) {
      if (!(err instanceof ChildProcessError) || err.reason !== 'exit') throw err;
      return { code: err.code ?? 1, tail: err.stderr.trim().split('\n').slice(-5), error: err };
    }
  };
  const fetch = async (sha: string): Promise<void> => {
    if (await cacheHasCommit(cache, sha)) return;
    const init = await initCacheRepo(cache, cacheGit);
    if (init.code !== 0) throw init.error;
    // As before the cache: a refused fetch by id falls back to every ref, whatever the refusal.
    const r = await fetchIntoCache(req.repoUrl, sha, cacheGit, { giveUp: () => false });
    if (r.code !== 0) throw r.error;
  };
  try {
    await fetch(req.commitSha);
  } catch (err) {
    if (err instanceof ChildProcessError && err.reason === 'timeout') return undefined;
    if (err instanceof ChildProcessError && err.reason !== 'spawn') throw fetchError(req, err);
    // Not the repository's fault: flock missing, the cache folder not writable by the worker.
    throw new Error(
      `cannot use the host's repository cache ${path.dirname(cache.dir)} for planning ` +
        `(${(err as Error).message}): the worker needs git, flock and write access to it, as its ` +
        'local machines do (or set SOLSTICE_LOCAL_HOST_CACHE=false)',
      { cause: err },
    );
  }
  return {
    git: (args, timeoutMs, maxOutputBytes) =>
      run('git', [...cache.config, '-C', cache.dir, ...args], cwd, env.local, timeoutMs, maxOutputBytes),
    fetchAlso: fetch,
    close: async () => undefined,
  };
}

/** In-process planning, for tests and tools that plan text they already trust to be small. */
export const planInProcess: NonNullable<PlanDeps['plan']> = (files, trigger) =>
  planDefinitions(files, trigger);

function fetchError(req: PlanRequest, err: unknown): Error {
  // git's message quotes the URL, which may carry a token: it would reach the UI and the DB.
  const why = redactUrlsInText(firstLine(err));
  return new Error(`cannot fetch ${redactUrlsInText(req.repoUrl)}: ${why}`, { cause: err });
}

type Git = (args: string[], timeoutMs: number, maxOutputBytes?: number) => Promise<string>;

/** A push's diff longer than this is not listed: its `paths` filters match, as for an unknown one. */
const MAX_DIFF_BYTES = 1024 * 1024;

/**
 * Whether the push's changed files are worth a second fetch: only Actions workflows filter on
 * paths, only for a push of a branch (GitHub ignores them for tags), and only with a known
 * before (a new branch has none: every filter matches).
 */
function needsChangedFiles(
  req: PlanRequest,
  files: Record<string, string>,
): req is PlanRequest & { beforeSha: string } {
  if (req.event !== 'push' || !req.ref?.startsWith('refs/heads/') || !req.beforeSha) return false;
  if (/^0+$/.test(req.beforeSha) || req.beforeSha === req.commitSha) return false;
  return Object.entries(files).some(
    ([p, text]) =>
      ACTIONS_WORKFLOW_DIRS.some((d) => p.startsWith(`${d}/`)) && /\bpaths(-ignore)?\s*:/.test(text),
  );
}

/**
 * The files between the push's before and after commits (`git diff-tree`, renames as a deletion
 * and an addition, so either path matches), fetching before next to the after the plan already
 * has. Undefined when that cannot be known (before is gone after a force-push, the diff is too
 * long): the filters then match, which runs too much rather than silently too little.
 */
async function pushChangedFiles(
  source: CommitSource,
  before: string | undefined,
  after: string,
  signal: AbortSignal,
  timeouts: { fetch: number; read: number },
): Promise<string[] | undefined> {
  if (!before) return undefined;
  try {
    await source.fetchAlso(before);
  } catch (err) {
    if (signal.aborted) throw err;
    // The fallback fetch of every ref may already have it; the diff below tells.
  }
  try {
    const out = await source.git(
      ['diff-tree', '-r', '-z', '--name-only', '--no-renames', '--no-commit-id', before, after],
      timeouts.read,
      MAX_DIFF_BYTES,
    );
    return out.split('\0').filter((p) => p.length > 0);
  } catch (err) {
    if (signal.aborted) throw err;
    return undefined;
  }
}

/**
 * The definition files the commit has, by path. `ls-tree -l` lists only the paths that exist,
 * with their sizes, so a missing file is no error and a file over the limit is refused before
 * it is read.
 */
async function readDefinitions(git: Git, sha: string, timeoutMs: number): Promise<Record<string, string>> {
  let listed: string;
  try {
    listed = await git(['ls-tree', '-l', `${sha}^{commit}`, '--', ...DEFINITION_PATHS], timeoutMs);
  } catch (err) {
    // The message is what the pipeline shows: say what to check, not only what git said.
    throw new CommitUnreadableError(
      `cannot read commit ${sha.slice(0, 12)} in the fetched repository (${firstLine(err)}); ` +
        'check that the commit is still in the repository (a force-push may have removed it)',
      undefined,
      { cause: err },
    );
  }
  // <mode> SP <type> SP <object> SP+ <size> TAB <path>
  const sizes = new Map<string, number>();
  for (const line of listed.split('\n')) {
    const m = /^\d+ blob [0-9a-f]+ +(\d+)\t(.+)$/.exec(line);
    if (m) sizes.set(m[2], Number(m[1]));
  }
  // Only the files of the planner that will plan this commit are read.
  const files: Record<string, string> = {};
  for (const file of choosePlanner([...sizes.keys()])?.files ?? []) {
    const size = sizes.get(file) ?? 0;
    if (size > WORKFLOW_FILE_LIMITS.bytes)
      throw ApplicationFailure.nonRetryable(
        `${file}:1:1: error: the file is ${size} bytes, more than the ${WORKFLOW_FILE_LIMITS.bytes} allowed`,
        'InvalidWorkflowFile',
      );
    try {
      files[file] = await git(['show', `${sha}:${file}`], timeoutMs, WORKFLOW_FILE_LIMITS.bytes + 1);
    } catch (err) {
      throw new CommitUnreadableError(
        `git listed ${file} at commit ${sha.slice(0, 12)} but cannot read it: ${firstLine(err)}`,
        undefined,
        { cause: err },
      );
    }
  }
  return files;
}
