/**
 * Running a program the engine depends on (git, qemu-img, cloud-localds) with bounds: a timeout, an
 * AbortSignal (an activity's cancellation), a cap on captured output. The program runs in
 * its own process group, and the whole group is killed: git's transport helpers (`git
 * remote-https`, `git remote-fd`) are children of the git we started, and must not outlive it.
 */
import { spawn } from 'node:child_process';

export class ChildProcessError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
    readonly code: number | null,
    readonly reason: 'exit' | 'timeout' | 'aborted' | 'output' | 'spawn',
  ) {
    super(message);
    this.name = 'ChildProcessError';
  }
}

export interface BoundedRun {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Bytes of stdout kept; more fails the run (reason 'output'). */
  maxOutputBytes?: number;
  /** Every chunk of stdout and stderr as it arrives (the runner shows git's output in the job log). */
  onData?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

/** Live process groups we started, so a test (or shutdown) can tell none is left. */
const live = new Set<number>();
export const liveChildGroups = (): number[] => [...live];

export function runBounded(cmd: string, args: readonly string[], opts: BoundedRun): Promise<string> {
  const max = opts.maxOutputBytes ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new ChildProcessError(`${cmd} not started: cancelled`, '', null, 'aborted'));
      return;
    }
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    if (pid !== undefined) live.add(pid);
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let why: ChildProcessError['reason'] | undefined;
    const killGroup = (reason: ChildProcessError['reason']) => {
      why ??= reason;
      try {
        if (pid !== undefined) process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => killGroup('timeout'), opts.timeoutMs);
    const onAbort = () => killGroup('aborted');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (b: Buffer) => {
      opts.onData?.(b, 'stdout');
      outBytes += b.length;
      if (outBytes > max) killGroup('output');
      else out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      opts.onData?.(b, 'stderr');
      if (err.length < 64 * 1024) err += b.toString('utf8');
    });
    const done = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // A helper the program left behind in its group (it exited, its child did not).
      killGroup(why ?? 'exit');
      if (pid !== undefined) live.delete(pid);
    };
    child.on('error', (e) => {
      done();
      reject(new ChildProcessError(`cannot run ${cmd}: ${e.message}`, '', null, 'spawn'));
    });
    child.on('close', (code) => {
      const reason = why;
      done();
      if (reason === 'timeout')
        reject(
          new ChildProcessError(
            `${cmd} ${args[0] ?? ''} took longer than ${opts.timeoutMs} ms and was stopped`,
            err,
            code,
            'timeout',
          ),
        );
      else if (reason === 'aborted')
        reject(new ChildProcessError(`${cmd} ${args[0] ?? ''} was cancelled`, err, code, 'aborted'));
      else if (reason === 'output')
        reject(
          new ChildProcessError(
            `${cmd} ${args[0] ?? ''} printed more than ${max} bytes`,
            err,
            code,
            'output',
          ),
        );
      else if (code !== 0)
        reject(new ChildProcessError(`${cmd} ${args[0] ?? ''} exited with ${code}`, err, code, 'exit'));
      else resolve(Buffer.concat(out).toString('utf8'));
    });
  });
}
