/** The scheduled sweep's activity: the retention settings the schedule carries, applied once. */
import { heartbeat, log } from '@temporalio/activity';
import type { BlobStore } from '../storage/blob-store';
import type { JobStore } from '../storage/job-store';
import { applyGc, describePlan, planGc, type GcResult, type RetentionPolicy } from '../storage/retention';

export function createRetentionActivities(deps: { jobs: JobStore; blobs: BlobStore }) {
  return {
    async collectGarbage(policy: RetentionPolicy): Promise<GcResult> {
      const plan = await planGc(deps.jobs.db, policy);
      for (const line of describePlan(plan)) log.info(`removing ${line}`);
      heartbeat();
      return applyGc(deps.jobs.db, deps.blobs, plan);
    },
  };
}
