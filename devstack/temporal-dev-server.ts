/**
 * Runs the Temporal CLI's dev server (frontend + Web UI in one process) for local use and tests.
 * The binary is built by infra/bootstrap.sh; we never download anything at run time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isListening } from '../platform/net';
import { devServerSearchAttributeFlags } from '../ingress/search-attributes';
import { findTool, startToolProcess, type ToolSpec } from './tool-process';

export const TEMPORAL_CLI: ToolSpec = {
  binary: 'temporal',
  title: 'the Temporal CLI',
  envVar: 'SOLSTICE_TEMPORAL_BIN',
};

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
  // An activity on the workflow's own task queue goes to the worker in the reply to the workflow
  // task that scheduled it, skipping a matching round trip (about 50 ms on a busy 2-core host).
  args.push('--dynamic-config-value', 'system.enableActivityEagerExecution=true');
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  const server = startToolProcess(findTool(TEMPORAL_CLI), args, { logFile: opts.logFile });
  try {
    await server.waitForPorts(host, [opts.port], { timeoutMs: 60_000, what: 'Temporal dev server' });
    await server.waitForPorts(host, [opts.uiPort], { timeoutMs: 30_000, what: 'Temporal Web UI' });
  } catch (err) {
    server.child.kill('SIGKILL');
    const where = opts.logFile ? ` (its log: ${opts.logFile})` : '';
    throw new Error(`${(err as Error).message}${where}`, { cause: err });
  }
  return { address, uiUrl, owned: true, stop: () => server.stop() };
}
