/**
 * The README's main job, as a user runs it: `solstice ci-local` brings everything up on
 * embedded defaults (embedded PostgreSQL, Temporal dev server), runs one job for a repository,
 * prints its log live, stops everything and exits with the job's result.
 * Every port is a free one, so this never collides with a developer's own `solstice up`.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, isListening } from '../../../platform/net';
import { jobRepo } from '../../support/git-repo';
import { temporalBackends } from '../../support/temporal-backends';
import { startTestCluster } from '../../support/temporal-cluster';
import { waitFor } from '../../support/wait';

const CLI = path.resolve(__dirname, '../../../dist/cli/main.js');

/** Free ports for everything ci-local starts, and the environment that points it at them. */
async function embeddedStack(stateDir: string) {
  const ports = {
    pg: await freePort(),
    temporal: await freePort(),
    ui: await freePort(),
    grpc: await freePort(),
    runner: await freePort(),
    amqp: await freePort(),
    page: await freePort(),
  };
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NO_COLOR: '1',
    SOLSTICE_STATE_DIR: stateDir,
    SOLSTICE_EMBEDDED_PG_PORT: String(ports.pg),
    TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`,
    TEMPORAL_UI_PORT: String(ports.ui),
    GRPC_ADDR: `127.0.0.1:${ports.grpc}`,
    SOLSTICE_RUNNER_SERVE_ADDR: `127.0.0.1:${ports.runner}`,
    SOLSTICE_JOB_PAGE_ADDR: `127.0.0.1:${ports.page}`,
    SOLSTICE_WORKSPACE_ROOT: path.join(stateDir, 'machines'),
    // No RabbitMQ here: ci-local must say so and start the job directly.
    AMQP_URL: `amqp://guest:guest@127.0.0.1:${ports.amqp}/%2f`,
  };
  return { ports, env };
}

function newStateDir(): string {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-cilocal-'));
  // As root, embedded PostgreSQL runs as the `postgres` user, which must be able to enter the folder.
  fs.chmodSync(stateDir, 0o711);
  return stateDir;
}

test('ci-local runs a job end to end on embedded defaults and leaves nothing running', async () => {
  const stateDir = newStateDir();
  const { ports, env } = await embeddedStack(stateDir);
  const repo = jobRepo('echo "building $SOLSTICE_COMMIT_SHA"\necho done');
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'ci-local', '--repo', repo.dir], {
      env,
      timeout: 240_000,
    });
    expect(stdout).toMatch(/postgres +embedded, postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:/);
    expect(stdout).toContain(`temporal web ui        http://127.0.0.1:${ports.ui}`);
    expect(stdout).toContain(`job page               http://127.0.0.1:${ports.page}/jobs/<job id>`);
    expect(stdout).toContain(`building ${repo.sha}\ndone\n`);
    expect(stdout).toMatch(/job [0-9a-f-]{36} success \(exit code 0\)/);
    // Everything it started is stopped again.
    for (const port of [ports.pg, ports.temporal, ports.ui, ports.grpc, ports.runner]) {
      expect(await isListening('127.0.0.1', port)).toBe(false);
    }
    expect(fs.readdirSync(path.join(stateDir, 'machines'))).toEqual([]);
  } finally {
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
});

test('SIGTERM during the job cancels it, destroys its machine and stops everything: exit 143, nothing left running', async () => {
  const stateDir = newStateDir();
  const { ports, env } = await embeddedStack(stateDir);
  // A word only this job's process has on its command line, to look for it afterwards (the
  // `; true` keeps sh from exec'ing sleep, which would drop it).
  const marker = `solstice-test-${randomBytes(6).toString('hex')}`;
  const repo = jobRepo(`echo "job is running"\nsh -c 'sleep 300; true' ${marker}`);
  const child = spawn(process.execPath, [CLI, 'ci-local', '--repo', repo.dir], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  try {
    await waitFor(() => /^job is running$/m.test(out), 180_000, 'the job to start');
    expect(processesWith(marker)).not.toEqual([]);
    child.kill('SIGTERM');
    expect(await exit).toEqual({ code: 143, signal: null });
    expect(out).toMatch(/^SIGTERM: cancelling pipeline [0-9a-f-]{36} /m);
    expect(out).toMatch(/^pipeline [0-9a-f-]{36} cancelled/m);
    for (const port of [ports.pg, ports.temporal, ports.ui, ports.grpc, ports.runner]) {
      expect(await isListening('127.0.0.1', port)).toBe(false);
    }
    expect(processesWith(marker)).toEqual([]);
    expect(fs.readdirSync(path.join(stateDir, 'machines'))).toEqual([]);
  } finally {
    child.kill('SIGKILL');
    // When the test failed: what ci-local left (its PostgreSQL and dev server name the state dir).
    for (const pid of [...processesWith(marker), ...processesWith(stateDir)]) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}, 300_000);

/** Pids of the processes whose command line has `marker`, but for the pgrep itself. */
function processesWith(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

// `up` (which ci-local runs) against a Temporal cluster on PostgreSQL: it uses the cluster as it
// finds it, runs the job there, and leaves the cluster running, since it did not start it.
(temporalBackends().includes('cluster') ? test : test.skip)(
  'ci-local runs its job on a Temporal cluster it finds at TEMPORAL_ADDRESS and leaves the cluster up',
  async () => {
    const cluster = await startTestCluster({ layout: 'single' });
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-cilocal-cluster-'));
    fs.chmodSync(stateDir, 0o711);
    try {
      const repo = jobRepo('echo "on the cluster $SOLSTICE_COMMIT_SHA"');
      const env = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NO_COLOR: '1',
        SOLSTICE_STATE_DIR: stateDir,
        SOLSTICE_EMBEDDED_PG_PORT: String(await freePort()),
        TEMPORAL_ADDRESS: cluster.address,
        GRPC_ADDR: `127.0.0.1:${await freePort()}`,
        SOLSTICE_RUNNER_SERVE_ADDR: `127.0.0.1:${await freePort()}`,
        SOLSTICE_JOB_PAGE_ADDR: `127.0.0.1:${await freePort()}`,
        SOLSTICE_WORKSPACE_ROOT: path.join(stateDir, 'machines'),
        AMQP_URL: `amqp://guest:guest@127.0.0.1:${await freePort()}/%2f`,
      };
      const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'ci-local', '--repo', repo.dir], {
        env,
        timeout: 240_000,
      });
      expect(stdout).toMatch(
        new RegExp(`temporal +${cluster.address.replace(/\./g, '\\.')} \\(already running\\)`),
      );
      expect(stdout).toContain(`on the cluster ${repo.sha}\n`);
      expect(stdout).toMatch(/job [0-9a-f-]{36} success \(exit code 0\)/);
      const [host, port] = cluster.address.split(':');
      expect(await isListening(host, Number(port))).toBe(true);
    } finally {
      fs.rmSync(stateDir, { recursive: true, force: true });
      await cluster.stop();
    }
  },
  400_000,
);
