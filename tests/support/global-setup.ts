/**
 * One real Temporal dev server for the whole integration run (tests isolate themselves with
 * their own task queues and databases). Its address reaches the tests through the environment.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { markRun } from './leak-check';
import { freePort } from '../../platform/net';
import { startDevServer } from '../../devstack/temporal-dev-server';

const ROOT = path.resolve(__dirname, '../..');

export default async function globalSetup(): Promise<void> {
  // The runner bundle and the compiled CLI are run as real processes by the tests.
  if (
    !fs.existsSync(path.join(ROOT, 'dist/runner/runner.js')) ||
    !fs.existsSync(path.join(ROOT, 'dist/cli/main.js'))
  ) {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  }
  const port = await freePort();
  const uiPort = await freePort();
  const logFile = path.join(os.tmpdir(), `solstice-test-temporal-${port}.log`);
  const server = await startDevServer({ port, uiPort, logFile });
  // Processes and temporary folders of the run are marked, for the teardown's leak check.
  markRun();
  process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS = server.address;
  process.env.SOLSTICE_TEST_TEMPORAL_UI = server.uiUrl;
  (globalThis as { __solsticeTemporal?: typeof server }).__solsticeTemporal = server;
}
