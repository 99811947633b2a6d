/**
 * Activities of the capacity scheduler: a job waits for a machine slot (a lease) before it is
 * provisioned, and gives it back after its machine is destroyed.
 */
import { Context, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { CapacityStore, ScheduleOptions } from '../capacity/store';
import type { LeaseGrant } from '../model/domain';

export interface CapacityDeps {
  capacity: CapacityStore;
  schedule: ScheduleOptions;
  /** How often a waiting job looks at its lease again. */
  pollMs?: number;
}

/**
 * Waiting jobs read their own lease every poll and run the scheduler only every this many
 * polls: releases and host heartbeats schedule too, so this is only a backstop, and many
 * waiting jobs do not each take the scheduler's lock every second.
 */
const SCHEDULE_EVERY_POLLS = 10;

export function createCapacityActivities(deps: CapacityDeps) {
  const pollMs = deps.pollMs ?? 1000;
  return {
    /**
     * Waits, heartbeating its queue position, until the job holds a slot on some host; returns
     * that host. Retried after a crash it finds its request again, in the same place.
     */
    async acquireLease(req: { jobId: string; label: string }): Promise<LeaseGrant> {
      const known = await deps.capacity.knownLabels();
      if (!known.includes(req.label)) {
        throw ApplicationFailure.nonRetryable(
          `no host runs machines for label "${req.label}"; labels of registered hosts: ${known.join(', ') || 'none'}`,
          'UnknownLabel',
        );
      }
      await deps.capacity.request(req.jobId, req.label);
      let lastPosition: number | undefined;
      for (let poll = 0; ; poll++) {
        if (poll % SCHEDULE_EVERY_POLLS === 0) await deps.capacity.schedule(deps.schedule);
        const lease = await deps.capacity.lease(req.jobId);
        if (!lease) throw ApplicationFailure.retryable(`lease of job ${req.jobId} vanished`, 'LeaseLost');
        if (lease.releasedAt) {
          // Only a cancelled job or a dead host releases a lease its job has not used yet.
          throw ApplicationFailure.nonRetryable(
            `the machine slot of job ${req.jobId} was given up before use (${lease.releaseReason ?? 'released'})`,
            'LeaseReleased',
          );
        }
        if (lease.hostId && lease.taskQueue) {
          log.info('machine slot granted', { jobId: req.jobId, hostId: lease.hostId });
          return { hostId: lease.hostId, taskQueue: lease.taskQueue };
        }
        const position = await deps.capacity.queuePosition(req.jobId);
        if (position !== lastPosition) log.info('waiting for a machine slot', { jobId: req.jobId, position });
        lastPosition = position;
        heartbeat({ queued: true, position });
        // Rejects when the workflow cancels the activity (delivered through the heartbeat).
        await Context.current().sleep(pollMs);
      }
    },

    async releaseLease(req: { jobId: string; reason: string }): Promise<void> {
      if (await deps.capacity.release(req.jobId, req.reason)) {
        // Hand the slot on now rather than at the next waiter's look.
        await deps.capacity.schedule(deps.schedule);
      }
    },
  };
}
