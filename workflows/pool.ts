/**
 * PoolWorkflow: the durable owner of one host's warm pools (`pool/<host id>`, visible in the
 * Temporal Web UI with the pools' state as its current details). It asks the host's worker to
 * reconcile the pool (activities/pool.ts) every `intervalMs`, and at once when a claim sends
 * `poolKick`, so a pool is refilled right after each claim. The state itself is in PostgreSQL
 * (pool_machines): this workflow holds no machine, so a lost worker loses nothing; the
 * reconcile that runs when the host's worker is back adopts or replaces what it finds.
 */
import {
  condition,
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import type { Activities } from './bookkeeping';
import { poolKickSignal } from './signals';
import type { PoolReport } from '../activities/pool';

export interface PoolInput {
  hostId: string;
  /** The host's own task queue: its machines are made and destroyed by the host they run on. */
  hostTaskQueue: string;
  intervalMs: number;
}

/** Looks per run before the history starts afresh (continue-as-new). */
const LOOKS_PER_RUN = 200;

function details(hostId: string, r: PoolReport): string {
  const rows = r.labels.map(
    (l) => `| ${l.label} | ${l.idle} | ${l.booting} | ${l.reserved} | ${l.minIdle}–${l.maxIdle} |`,
  );
  const gone = r.destroyed.map((d) => `- destroyed \`${d.machineId}\`: ${d.reason}`);
  return [
    `**warm pools of ${hostId}**`,
    '',
    '| label | idle | booting | claimed, starting | min–max idle |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    ...(gone.length > 0 ? ['', 'last look:', ...gone] : []),
  ].join('\n');
}

export async function PoolWorkflow(input: PoolInput): Promise<void> {
  const host = proxyActivities<Activities>({
    taskQueue: input.hostTaskQueue,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '1 minute',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });
  let kicked = false;
  setHandler(poolKickSignal, () => {
    kicked = true;
  });
  for (let look = 0; look < LOOKS_PER_RUN; look++) {
    kicked = false;
    const report = await host.reconcilePool.executeWithOptions({ summary: 'look at the pool' }, []);
    setCurrentDetails(details(input.hostId, report));
    if (report.empty) return;
    // Booted machines need a look soon (they turn idle); otherwise the timer or the next claim.
    await condition(() => kicked, report.booted > 0 ? Math.min(input.intervalMs, 2_000) : input.intervalMs);
  }
  await continueAsNew<typeof PoolWorkflow>(input);
}
