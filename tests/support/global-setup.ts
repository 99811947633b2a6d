/**
 * One real Temporal dev server for the whole integration run (tests isolate themselves with
 * their own task queues and databases). Its address reaches the tests through the environment.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { RUN_MARKER_ENV } from './leak-check';
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
  // Everything the run starts carries its marker, and every temporary folder of the run is
  // under its own TMPDIR, so the teardown can tell what this run left behind (leak-check.ts).
  const id = randomUUID();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-test-run-'));
  // mkdtemp makes it 0700; as /tmp itself, it must be enterable by the embedded PostgreSQL's
  // own user (tests keep its data below it) and by the guest-image and machine processes.
  fs.chmodSync(tmp, 0o755);
  process.env[RUN_MARKER_ENV] = id;
  process.env.TMPDIR = tmp;
  (globalThis as { __solsticeRun?: { id: string; tmp: string } }).__solsticeRun = { id, tmp };
  process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS = server.address;
  process.env.SOLSTICE_TEST_TEMPORAL_UI = server.uiUrl;
  (globalThis as { __solsticeTemporal?: typeof server }).__solsticeTemporal = server;
}
