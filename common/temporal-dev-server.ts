/**
 * Runs the Temporal CLI's dev server (frontend + Web UI in one process) for local use and tests.
 * The binary is built by infra/bootstrap.sh; we never download anything at run time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MissingToolError } from './errors';
import { isListening, waitForPort } from './net';
import { devServerSearchAttributeFlags } from './search-attributes';

const REPO_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');

export function temporalBinary(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [
    env.SOLSTICE_TEMPORAL_BIN,
    path.join(env.SOLSTICE_TOOLS_DIR ?? path.join(REPO_ROOT, '.tools'), 'bin', 'temporal'),
  ].filter((p): p is string => Boolean(p));
  for (const p of candidates) if (fs.existsSync(p)) return p;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'temporal');
    if (dir && fs.existsSync(p)) return p;
  }
  throw new MissingToolError(
    `the Temporal CLI was not found (looked in ${candidates.join(', ')} and PATH)`,
    'Build it once with `npm run bootstrap` (needs Go and the Go module proxy), or set SOLSTICE_TEMPORAL_BIN.',
  );
}

export interface DevServer {
  address: string;
  uiUrl: string;
  /** False when an already-running server on that port was reused. */
  owned: boolean;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  host?: string;
  port: number;
  uiPort: number;
  /** SQLite file for persistence across restarts; omit for in-memory. */
  dbFile?: string;
  logFile?: string;
  namespace?: string;
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const host = opts.host ?? '127.0.0.1';
  const address = `${host}:${opts.port}`;
  const uiUrl = `http://${host}:${opts.uiPort}`;
  if (await isListening(host, opts.port)) {
    return { address, uiUrl, owned: false, stop: async () => undefined };
  }
  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(opts.port),
    '--ui-port',
    String(opts.uiPort),
  ];
  args.push('--log-level', 'warn', '--namespace', opts.namespace ?? 'default');
  // Known from the first request on; workers also register them on servers they did not start.
  args.push(...devServerSearchAttributeFlags());
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const child: ChildProcess = spawn(temporalBinary(), args, { stdio: ['ignore', out, out] });
  let exited = false;
  child.once('exit', () => (exited = true));
  try {
    await waitForPort(host, opts.port, {
      timeoutMs: 60_000,
      isAlive: () => !exited,
      what: 'Temporal dev server',
    });
    await waitForPort(host, opts.uiPort, {
      timeoutMs: 30_000,
      isAlive: () => !exited,
      what: 'Temporal Web UI',
    });
  } catch (err) {
    child.kill('SIGKILL');
    const where = opts.logFile ? ` (its log: ${opts.logFile})` : '';
    throw new Error(`${(err as Error).message}${where}`, { cause: err });
  }
  return {
    address,
    uiUrl,
    owned: true,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
