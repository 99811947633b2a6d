/**
 * Keeps this VM host on the capacity scheduler's books while its worker runs: registers it
 * (task queue, labels, machine limit), heartbeats and schedules every third of the host TTL, and now and then
 * gives back leases whose workflow ended without releasing them (e.g. it was terminated).
 * Leases of hosts that stopped heartbeating are reclaimed by the scheduler itself.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { CapacityStore, HostRegistration, ScheduleOptions } from '../common/capacity-store';
import type { Logger } from '../common/logger';

export interface HostKeeper {
  stop(): Promise<void>;
}

const RECLAIM_BATCH = 200;

export async function keepHostRegistered(
  host: HostRegistration,
  deps: { capacity: CapacityStore; client: Client; log: Logger; schedule: ScheduleOptions },
): Promise<HostKeeper> {
  await deps.capacity.registerHost(host);
  // Jobs already waiting for this host's labels need not wait for its first beat.
  await deps.capacity.schedule(deps.schedule);
  deps.log.info({ host }, 'host registered for capacity');

  let busy = false;
  let beats = 0;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      await deps.capacity.heartbeatHost(host.id);
      // Also reclaims the leases of hosts that went silent and hands their slots on.
      await deps.capacity.schedule(deps.schedule);
      beats += 1;
      if (beats % 3 === 0) await reclaimEnded(deps.capacity, deps.client, deps.log);
    } catch (err) {
      deps.log.warn({ err }, 'host heartbeat or lease reclaim failed; retrying at the next beat');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), Math.max(100, Math.floor(deps.schedule.hostTtlMs / 3)));

  return {
    async stop() {
      clearInterval(timer);
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
