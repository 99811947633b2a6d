/** Runs the compiled `solstice` CLI as a real process, as a user would, and never throws. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Config } from '../../platform/config';

export const CLI = path.resolve(__dirname, '../../dist/cli/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment that points the CLI at a test's database, Temporal and task queue. */
export function cliEnv(
  cfg: Pick<Config, 'databaseUrl' | 'temporalAddress' | 'taskQueue' | 'blobFsRoot'>,
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: cfg.databaseUrl,
    // A finished job's log and its artifacts are read from the stack's blob store.
    BLOB_FS_ROOT: cfg.blobFsRoot,
    TEMPORAL_ADDRESS: cfg.temporalAddress,
    SOLSTICE_TASK_QUEUE: cfg.taskQueue,
    NO_COLOR: '1',
  };
}

export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 120_000,
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      env,
      timeout: timeoutMs,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as CliResult;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
