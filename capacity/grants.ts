/**
 * Tells waiting workflows that their machine slot was granted. A job waits for its slot in its
 * workflow (a durable condition), not in an activity, so no number of queued jobs can hold the
 * worker's activity slots; the grant arrives as the `leaseGranted` signal from the process whose
 * scheduling round made it (a release, a new request, a host heartbeat).
 *
 * A signal that cannot be sent (Temporal briefly unreachable, the process dies between commit and
 * signal) costs only latency: the waiting workflow reads its lease on a backstop timer.
 */
import type { Client } from '@temporalio/client';
import { leaseGrantedSignal } from '../workflows/signals';
import type { GrantMade } from './store';

/** Where a failed announcement is reported: the activity log or a service logger. */
export type GrantWarn = (message: string, attrs: Record<string, unknown>) => void;

export async function announceGrants(client: Client, grants: GrantMade[], warn: GrantWarn): Promise<void> {
  await Promise.all(
    grants.map(async (g) => {
      try {
        await client.workflow
          .getHandle(g.workflowId)
          .signal(leaseGrantedSignal, { hostId: g.hostId, taskQueue: g.taskQueue });
      } catch (err) {
        warn('could not tell a workflow its machine slot was granted; it finds out at its next look', {
          err,
          jobId: g.jobId,
          workflowId: g.workflowId,
        });
      }
    }),
  );
}
