/**
 * The activities as both workflows see them (a type only: the worker supplies the code), and
 * the one way both call their database bookkeeping.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities';

export type Activities = ReturnType<typeof createActivities>;

/** Short database writes and reads: retried without a limit, the database comes back. */
export const db = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});
