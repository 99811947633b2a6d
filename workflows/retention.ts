/**
 * RetentionWorkflow: one sweep of the retention settings, started by the worker's Temporal
 * Schedule (workers/gc-schedule.ts) every SOLSTICE_GC_INTERVAL. A schedule rather than a timer
 * in some process: it runs once however many workers there are, and a missed run is not lost.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from './bookkeeping';
import type { RetentionPolicy } from '../storage/retention';

const gc = proxyActivities<Activities>({
  startToCloseTimeout: '1 hour',
  retry: { initialInterval: '10s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 5 },
});

export async function RetentionWorkflow(policy: RetentionPolicy): Promise<void> {
  await gc.collectGarbage(policy);
}
