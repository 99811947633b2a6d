/**
 * A real Temporal cluster on the machine's PostgreSQL for a test file (devstack/temporal-cluster.ts):
 * its own databases, created and dropped, the schema by temporal-sql-tool, and the namespace and
 * search attributes registered by our own `solstice temporal setup`, as an operator does on a
 * fresh cluster. The binaries are built on first use (`infra/bootstrap.sh temporal-server
 * temporal-sql-tool`, a no-op once cached in SOLSTICE_TOOLS_DIR).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startTemporalCluster,
  TEMPORAL_SERVER,
  TEMPORAL_SQL_TOOL,
  type ClusterLayout,
  type TemporalCluster,
  type TemporalClusterOptions,
} from '../../devstack/temporal-cluster';
import { ADMIN_URL } from './database';
import { runCli } from './cli';

const ROOT = path.resolve(__dirname, '../..');

export interface TestCluster extends TemporalCluster {
  stateDir: string;
}

/** Builds the cluster binaries on first use, unless both are named directly. */
function ensureClusterTools(): void {
  if (process.env[TEMPORAL_SERVER.envVar] && process.env[TEMPORAL_SQL_TOOL.envVar]) return;
  execFileSync('bash', [path.join(ROOT, 'infra/bootstrap.sh'), 'temporal-server', 'temporal-sql-tool'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** `solstice temporal setup` until it succeeds: history and matching may join the ring after the frontend answers. */
export async function setupNamespaceWithCli(address: string, namespace = 'default'): Promise<string> {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NO_COLOR: '1',
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: namespace,
  };
  const deadline = Date.now() + 90_000;
  for (;;) {
    const r = await runCli(['temporal', 'setup'], env, 60_000);
    if (r.code === 0) return r.stdout;
    if (Date.now() > deadline)
      throw new Error(`solstice temporal setup against ${address} failed: ${r.stdout}${r.stderr}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

export async function startTestCluster(
  opts: { layout?: ClusterLayout } & Partial<Omit<TemporalClusterOptions, 'layout'>> = {},
): Promise<TestCluster> {
  ensureClusterTools();
  const id = randomBytes(4).toString('hex');
  const { layout = 'single', pgUrl = ADMIN_URL, databasePrefix = `solstice_tc_${id}`, ...rest } = opts;
  const stateDir = rest.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `solstice-tcluster-${id}-`));
  const cluster = await startTemporalCluster({ ...rest, layout, pgUrl, databasePrefix, stateDir });
  try {
    await setupNamespaceWithCli(cluster.address);
  } catch (err) {
    await cluster.stop();
    throw new Error(`${(err as Error).message}\n(cluster logs in ${stateDir})`, { cause: err });
  }
  return {
    ...cluster,
    stateDir,
    async stop() {
      await cluster.stop();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
