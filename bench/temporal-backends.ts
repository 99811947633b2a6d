/**
 * The Temporal a bench runs against, so one run can compare them side by side
 * (`--temporal dev,cluster,cluster-split`):
 *
 *   dev            `temporal server start-dev` (one process, SQLite in memory), as `solstice up`
 *   cluster        temporal-server on PostgreSQL, every service in one process
 *   cluster-split  frontend, history ×2, matching and worker as separate processes
 *
 * A cluster gets its own databases on SOLSTICE_BENCH_PG_URL (default the machine's PostgreSQL,
 * postgresql://postgres@127.0.0.1:5432/postgres), dropped afterwards, and its namespace and
 * search attributes the way `solstice temporal setup` makes them. The binaries come from
 * `bash infra/bootstrap.sh temporal-server temporal-sql-tool`.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTemporalCluster } from '../devstack/temporal-cluster';
import { startDevServer } from '../devstack/temporal-dev-server';
import { setupNamespace } from '../ingress/temporal-namespace';
import { loadConfig } from '../platform/config';
import { freePort } from '../platform/net';
import { connectClient } from '../platform/temporal';

export const BENCH_TEMPORALS = ['dev', 'cluster', 'cluster-split'] as const;
export type BenchTemporal = (typeof BENCH_TEMPORALS)[number];

export function parseTemporalFlag(value: string): BenchTemporal[] {
  const wanted = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const w of wanted)
    if (!BENCH_TEMPORALS.includes(w as BenchTemporal))
      throw new Error(`--temporal ${value}: expected a comma list of ${BENCH_TEMPORALS.join(', ')}`);
  return wanted as BenchTemporal[];
}

export interface BenchTemporalServer {
  kind: BenchTemporal;
  address: string;
  stop(): Promise<void>;
}

/** Registers the namespace once history and matching have joined (the frontend answers before). */
async function setupWhenServing(address: string): Promise<void> {
  const temporal = await connectClient(loadConfig({ temporalAddress: address }));
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        await setupNamespace(temporal.client.connection, { namespace: 'default', retentionMs: 86_400_000 });
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } finally {
    await temporal.close();
  }
}

export async function startBenchTemporal(kind: BenchTemporal): Promise<BenchTemporalServer> {
  if (kind === 'dev') {
    const dev = await startDevServer({ port: await freePort(), uiPort: await freePort() });
    return { kind, address: dev.address, stop: dev.stop };
  }
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-bench-temporal-'));
  const cluster = await startTemporalCluster({
    layout: kind === 'cluster' ? 'single' : 'split',
    pgUrl: process.env.SOLSTICE_BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    databasePrefix: `solstice_bench_tc_${randomBytes(4).toString('hex')}`,
    stateDir,
    // Fewer than the deploy template's 512: two history nodes on a 2-core machine take each
    // shard's lease and queues at start, and 64 already spreads the load across both.
    numHistoryShards: 64,
  });
  const stop = async () => {
    await cluster.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    await setupWhenServing(cluster.address);
  } catch (err) {
    await stop();
    throw err;
  }
  return { kind, address: cluster.address, stop };
}
