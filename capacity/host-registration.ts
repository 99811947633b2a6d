/**
 * Keeps this VM host on the capacity scheduler's books while its worker runs: registers it
 * (task queue, labels, machine limit), heartbeats and schedules every third of the host TTL, and now and then
 * gives back leases whose workflow ended without releasing them (e.g. it was terminated).
 * Leases of hosts that stopped heartbeating are reclaimed by the scheduler itself.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { announceGrants } from './grants';
import type { CapacityStore, HostRegistration, ScheduleOptions } from './store';
import type { Logger } from '../platform/logger';

export interface HostKeeper {
  stop(): Promise<void>;
}

const RECLAIM_BATCH = 200;

export async function keepHostRegistered(
  host: HostRegistration,
  deps: { capacity: CapacityStore; client: Client; log: Logger; schedule: ScheduleOptions },
): Promise<HostKeeper> {
  await deps.capacity.registerHost(host);
  const schedule = async (): Promise<void> =>
    announceGrants(deps.client, await deps.capacity.schedule(deps.schedule), (m, a) => deps.log.warn(a, m));
  // Jobs already waiting for this host's labels need not wait for its first beat.
  await schedule();
  deps.log.info({ host }, 'host registered for capacity');

  // Heartbeats never wait behind a slow reclaim round, or the host could look dead.
  const every = (ms: number, what: string, work: () => Promise<void>) => {
    let current: Promise<void> | undefined;
    const timer = setInterval(() => {
      if (current) return;
      current = work()
        .catch((err: unknown) => deps.log.warn({ err }, `${what} failed; trying again later`))
        .finally(() => (current = undefined));
    }, ms);
    return async () => {
      clearInterval(timer);
      await current;
    };
  };
  const beat = Math.max(100, Math.floor(deps.schedule.hostTtlMs / 3));
  const stops = [
    every(beat, 'host heartbeat', async () => {
      await deps.capacity.heartbeatHost(host.id);
      // Also reclaims the leases of hosts that went silent and hands their slots on.
      await schedule();
    }),
    every(beat * 3, 'reclaiming leases of ended workflows', () =>
      reclaimEnded(deps.capacity, deps.client, deps.log),
    ),
  ];

  return {
    async stop() {
      for (const stop of stops) await stop();
      await deps.capacity.stopHost(host.id);
    },
  };
}

async function reclaimEnded(capacity: CapacityStore, client: Client, log: Logger): Promise<void> {
  for (const l of await capacity.activeLeases(RECLAIM_BATCH)) {
    let ended: string | undefined;
    try {
      const d = await client.workflow.getHandle(l.workflowId).describe();
      if (d.status.name !== 'RUNNING') ended = d.status.name.toLowerCase();
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      ended = 'not found';
    }
    if (ended && (await capacity.release(l.jobId, `reclaimed: workflow ${l.workflowId} ${ended}`)))
      log.warn(
        { jobId: l.jobId, workflowId: l.workflowId, ended },
        'reclaimed the lease of an ended workflow',
      );
  }
}
