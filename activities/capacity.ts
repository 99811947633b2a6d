/**
 * Activities of the capacity scheduler: a job asks for a machine slot (a lease) before it is
 * provisioned, and gives it back after its machine is destroyed.
 *
 * Every activity here is short. The wait itself happens in the workflow (a condition on the
 * `leaseGranted` signal with a durable backstop timer), so queued jobs hold no worker activity
 * slot: with 100 slots and 130 queued jobs, a release still runs at once and hands its slot on.
 */
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { announceGrants } from '../capacity/grants';
import type { CapacityStore, ScheduleOptions } from '../capacity/store';
import type { LeaseGrant } from '../model/domain';

export interface CapacityDeps {
  capacity: CapacityStore;
  schedule: ScheduleOptions;
}

/** Where a job's request stands: granted (to this host), or waiting at this place in its label's queue. */
export interface LeaseState {
  grant?: LeaseGrant;
  position?: number;
}

export function createCapacityActivities(deps: CapacityDeps) {
  /**
   * Grants what fits and tells the workflows that got a slot, except `asker`'s: the job asking
   * learns its grant from the answer (a signal to it would cost its workflow one more task).
   */
  const schedule = async (asker?: string): Promise<void> => {
    const grants = await deps.capacity.schedule(deps.schedule);
    await announceGrants(
      Context.current().client,
      grants.filter((g) => g.jobId !== asker),
      (m, a) => log.warn(m, a),
    );
  };

  const leaseState = async (jobId: string): Promise<LeaseState> => {
    const lease = await deps.capacity.lease(jobId);
    if (!lease) throw ApplicationFailure.retryable(`lease of job ${jobId} vanished`, 'LeaseLost');
    if (lease.releasedAt) {
      // Only a cancelled job or a dead host releases a lease its job has not used yet.
      throw ApplicationFailure.nonRetryable(
        `the machine slot of job ${jobId} was given up before use (${lease.releaseReason ?? 'released'})`,
        'LeaseReleased',
      );
    }
    if (lease.hostId && lease.taskQueue)
      return { grant: { hostId: lease.hostId, taskQueue: lease.taskQueue } };
    return { position: await deps.capacity.queuePosition(jobId) };
  };

  return {
    /**
     * Puts the job in its label's queue (idempotent: a retry keeps its place), runs a scheduling
     * round, and says where the job stands.
     */
    async requestLease(req: { jobId: string; label: string }): Promise<LeaseState> {
      const known = await deps.capacity.knownLabels();
      if (!known.includes(req.label)) {
        throw ApplicationFailure.nonRetryable(
          `no host runs machines for label "${req.label}"; labels of registered hosts: ${known.join(', ') || 'none'}`,
          'UnknownLabel',
        );
      }
      await deps.capacity.request(req.jobId, req.label);
      await schedule(req.jobId);
      const state = await leaseState(req.jobId);
      if (state.grant) log.info('machine slot granted', { jobId: req.jobId, hostId: state.grant.hostId });
      else log.info('waiting for a machine slot', { jobId: req.jobId, position: state.position });
      return state;
    },

    /**
     * The job's granted host is gone (its worker did not take the lost machine's destroy within
     * the host TTL): back in the queue at its old place, a scheduling round (which reclaims the
     * gone host's other leases), and where the job stands now.
     */
    async requeueLease(req: { jobId: string; reason: string }): Promise<LeaseState> {
      if (!(await deps.capacity.requeue(req.jobId)))
        throw ApplicationFailure.retryable(`lease of job ${req.jobId} vanished`, 'LeaseLost');
      log.warn('machine slot requeued', { jobId: req.jobId, reason: req.reason });
      await schedule();
      return leaseState(req.jobId);
    },

    /** The waiting workflow's backstop look at its lease, should a grant signal have been lost. */
    async checkLease(req: { jobId: string }): Promise<LeaseState> {
      return leaseState(req.jobId);
    },

    async releaseLease(req: { jobId: string; reason: string }): Promise<void> {
      // Hand the slot on now rather than at the next host heartbeat.
      if (await deps.capacity.release(req.jobId, req.reason)) await schedule();
    },
  };
}
