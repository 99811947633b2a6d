/**
 * Runs the job script with /bin/sh from the repository root and turns its stdout and stderr
 * into log lines, numbered in the order the runner reads them.
 *
 * The script gets its own process group, so the runner can forward SIGTERM/SIGINT to
 * everything it started and stop what it leaves running in the background after it exits.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import type { Readable } from 'node:stream';
import type { SystemLog } from './checkout';
import { redactUrlsInText } from '../model/redact-url';
import { diag } from './diag';
import type { JobContext } from './job-context';
import type { LineStream, LogBuffer } from './log/buffer';
import { LineSplitter } from './log/lines';
import { SecretMasker, secretsFromEnv } from '../model/secret-mask';

export interface ScriptResult {
  /** The script's exit code, or 128 + signal number when a signal ended it (as a shell reports it). */
  exitCode: number;
  signal: NodeJS.Signals | null;
}

export interface RunningScript {
  pid: number | undefined;
  done: Promise<ScriptResult>;
  /** Sends `signal` to the script and everything it started. */
  kill(signal: NodeJS.Signals): void;
}

export interface RunScriptOptions {
  scriptPath: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  buffer: LogBuffer;
  log: SystemLog;
  /** Arguments to /bin/sh before the script (e.g. `-e` for a workflow step). */
  shellArgs?: string[];
  /** What the messages call the script; default `job.sh`. */
  label?: string;
  /**
   * After the script exited, how long its output pipes may stay silent (held open by a
   * background process) before the runner stops reading them.
   */
  idleGraceMs?: number;
  /** Masks the job's secrets in every line before it enters the buffer. */
  secrets?: SecretMasker;
  /** The program the script is given to; default /bin/sh. */
  shell?: string;
  /** Sees every line before it is masked (workflow commands such as `::add-mask::`) and may rewrite it. */
  onLine?: (text: string) => string;
}

/**
 * The script's environment: the runner's own, minus the job token (the script is untrusted
 * code from the repository), plus the job's SOLSTICE_* variables and CI=true.
 */
export function jobScriptEnv(base: NodeJS.ProcessEnv, ctx: JobContext): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...ctx.env, ...ctx.secrets };
  delete env.SOLSTICE_JOB_TOKEN;
  return {
    ...env,
    CI: 'true',
    SOLSTICE_JOB_ID: ctx.jobId,
    // Without credentials: a token in the URL is for fetching, not for the script.
    SOLSTICE_REPO_URL: redactUrlsInText(ctx.repoUrl),
    SOLSTICE_COMMIT_SHA: ctx.commitSha,
    SOLSTICE_WORKDIR: ctx.workdir,
  };
}

/** `Authorization: token abc`: the whole value and its last word (the token itself). */
function checkoutCredentialValues(header: string): { name: string; value: string }[] {
  const value = header.replace(/^[^:]*:\s*/, '');
  const token = value.split(/\s+/).pop() ?? value;
  return [
    { name: 'checkout credential', value },
    { name: 'checkout credential', value: token },
  ];
}

/**
 * What the job's log must not show: the job's secrets, every secret-named variable of the script's
 * environment (`*_TOKEN`, `*_SECRET`, `*_PASSWORD`, `*_KEY`), the runner's own job token and
 * the checkout credential.
 */
export function jobSecretMasker(scriptEnv: NodeJS.ProcessEnv, ctx: JobContext): SecretMasker {
  return new SecretMasker([
    { name: 'SOLSTICE_JOB_TOKEN', value: ctx.token },
    // The header and the token in it, should git ever print either.
    ...(ctx.checkoutAuthHeader ? checkoutCredentialValues(ctx.checkoutAuthHeader) : []),
    ...Object.entries(ctx.secrets).map(([name, value]) => ({ name, value })),
    ...secretsFromEnv(scriptEnv),
  ]);
}

export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const signo = signal ? os.constants.signals[signal] : undefined;
  return signo !== undefined ? 128 + signo : 1;
}

export function runJobScript(opts: RunScriptOptions): RunningScript {
  const { buffer } = opts;
  const label = opts.label ?? 'job.sh';
  const child = spawn(opts.shell ?? '/bin/sh', [...(opts.shellArgs ?? []), opts.scriptPath], {
    cwd: opts.cwd,
    env: opts.env,
    // No stdin: a CI script must not wait for input nobody gives.
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group (setsid), see killGroup
  });

  const killGroup = (signal: NodeJS.Signals | 0): boolean => {
    if (child.pid === undefined) return false;
    try {
      process.kill(-child.pid, signal);
      return true;
    } catch {
      return false; // ESRCH: nothing left in the group
    }
  };

  let lastDataAt = performance.now();
  const pipe = (stream: Readable, kind: LineStream): Promise<void> => {
    // Masking sees whole lines (a secret split across two reads is one string by then), per
    // stream, so a multi-line secret's lines are not interleaved with the other pipe's.
    const emit = (text: string): void => void buffer.append(kind, text);
    const masker = opts.secrets?.lineMasker(emit);
    const masked = masker ? (text: string) => masker.push(text) : emit;
    const onLine = opts.onLine;
    const splitter = new LineSplitter(onLine ? (text) => masked(onLine(text)) : masked);
    stream.on('data', (chunk: Buffer) => {
      lastDataAt = performance.now();
      splitter.push(chunk);
    });
    return new Promise((resolve) => {
      stream.once('close', () => {
        splitter.end(); // a last line without newline
        masker?.end(); // lines held back as a possible start of a multi-line secret
        resolve();
      });
    });
  };
  const pipesClosed = Promise.all([
    pipe(child.stdout, 'LOG_STREAM_STDOUT'),
    pipe(child.stderr, 'LOG_STREAM_STDERR'),
  ]);

  // Back-pressure: stop reading while too much is waiting for the log service; the script then
  // blocks writing to a full pipe instead of the runner running out of memory.
  // Pausing may flap at the limit many times a second: say so on the console now and then only.
  let lastPauseNote = -Infinity;
  buffer.setPressureHandler((paused) => {
    if (paused) {
      if (performance.now() - lastPauseNote > 30_000) {
        lastPauseNote = performance.now();
        diag(
          `${formatBytes(buffer.unackedBytes)} of log not yet stored by the log service; pausing the job's output until it catches up`,
        );
      }
      child.stdout.pause();
      child.stderr.pause();
    } else {
      child.stdout.resume();
      child.stderr.resume();
    }
  });

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  const done = (async (): Promise<ScriptResult> => {
    try {
      const { code, signal } = await exited;
      // The script is done; what it left running would outlive the job on a shared machine
      // (and may hold the output pipes open).
      if (killGroup(0)) {
        opts.log(`${label} exited but left processes running; stopping them`);
        killGroup('SIGTERM');
      }
      await drainPipes(
        pipesClosed,
        () => lastDataAt,
        buffer,
        opts.idleGraceMs ?? 5_000,
        () => {
          opts.log(`job output still open after ${label} exited; no longer reading it`);
          killGroup('SIGKILL');
          child.stdout.destroy();
          child.stderr.destroy();
        },
      );
      return { exitCode: exitCodeOf(code, signal), signal };
    } finally {
      buffer.setPressureHandler(undefined);
    }
  })();

  return { pid: child.pid, done, kill: (signal) => void killGroup(signal) };
}

function formatBytes(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

/** Waits until both pipes closed, or until they were silent (and not paused by us) for graceMs. */
async function drainPipes(
  closed: Promise<unknown>,
  lastDataAt: () => number,
  buffer: LogBuffer,
  graceMs: number,
  giveUp: () => void,
): Promise<void> {
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  while (!isClosed) {
    await Promise.race([closed, new Promise((r) => setTimeout(r, Math.min(250, graceMs)))]);
    if (!isClosed && !buffer.isPaused && performance.now() - lastDataAt() > graceMs) {
      giveUp();
      await closed;
      return;
    }
  }
}
