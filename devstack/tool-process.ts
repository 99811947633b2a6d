/**
 * The native tools infra/bootstrap.sh builds from Go (the Temporal CLI, versitygw, Jaeger), found
 * and run one way: where the binary may be, a child process whose output goes to a log file,
 * waiting for its ports while noticing that it died, and stopping it (SIGTERM, then SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readSetting } from '../platform/config';
import { MissingToolError } from '../platform/errors';
import { waitForPort } from '../platform/net';

export interface ToolSpec {
  /** The binary's file name in .tools/bin and on PATH. */
  binary: string;
  /** What to call it in messages, e.g. "the Temporal CLI". */
  title: string;
  /** The environment variable that names the binary directly. */
  envVar: string;
}

/** $<envVar>, then <SOLSTICE_TOOLS_DIR>/bin (a setting; default .tools/bin), then PATH. */
export function findTool(tool: ToolSpec, env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [env[tool.envVar], path.join(readSetting('toolsDir', env), 'bin', tool.binary)].filter(
    (p): p is string => Boolean(p),
  );
  for (const p of candidates) if (fs.existsSync(p)) return p;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, tool.binary);
    if (dir && fs.existsSync(p)) return p;
  }
  throw new MissingToolError(
    `${tool.title} was not found (looked in ${candidates.join(', ')} and PATH)`,
    `Build it once with \`npm run bootstrap\` (needs Go and the Go module proxy), or set ${tool.envVar}.`,
  );
}

export interface ToolProcess {
  child: ChildProcess;
  readonly exited: boolean;
  /**
   * Resolves once every port accepts connections; rejects at once if the process exits, with its
   * exit status and the end of its log in the message (CI keeps the message, not the log file).
   */
  waitForPorts(host: string, ports: number[], opts: { timeoutMs: number; what: string }): Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** A tool did not come up; the message has its exit status and the end of its log. */
export class ToolStartError extends Error {}

/** The last `n` non-empty lines of a log, each indented, at most 4 KiB. */
export function logTail(file: string, n: number): string {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 16 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
  const lines = text
    .split('\n')
    .filter((l) => l.trim())
    .slice(-n);
  return lines
    .map((l) => `    ${l.length > 400 ? `${l.slice(0, 400)}…` : l}`)
    .join('\n')
    .slice(-4096);
}

export function startToolProcess(
  binary: string,
  args: string[],
  opts: { logFile?: string; env?: NodeJS.ProcessEnv } = {},
): ToolProcess {
  const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(binary, args, { stdio: ['ignore', out, out], env: opts.env ?? process.env });
  if (typeof out === 'number') fs.closeSync(out);
  let exited = false;
  let status = '';
  child.once('exit', (code, signal) => {
    exited = true;
    status = signal ? `killed by ${signal}` : `exit code ${code}`;
  });
  return {
    child,
    get exited() {
      return exited;
    },
    async waitForPorts(host, ports, { timeoutMs, what }) {
      try {
        for (const port of ports) await waitForPort(host, port, { timeoutMs, isAlive: () => !exited, what });
      } catch (err) {
        const tail = opts.logFile ? logTail(opts.logFile, 20) : '';
        const why = [exited ? `(${status})` : '', tail ? `; the end of its log:\n${tail}` : ''].join('');
        throw new ToolStartError(`${(err as Error).message} ${why}`.trim(), { cause: err });
      }
    },
    stop: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
