/** The forge status activity: forge errors become Temporal failures that are retried only when that can help. */
import { ApplicationFailure } from '@temporalio/common';
import { ForgeApiError, type ReportResult, type StatusReporter, type StatusUpdate } from '../forges/forge';

export function createForgeStatusActivities(reporter: StatusReporter) {
  return {
    async reportForgeStatus(u: StatusUpdate): Promise<ReportResult> {
      try {
        return await reporter.report(u);
      } catch (err) {
        if (err instanceof ForgeApiError && !err.retryable)
          throw ApplicationFailure.nonRetryable(err.message, 'ForgeRejectedStatus');
        throw ApplicationFailure.retryable(
          err instanceof Error ? err.message : String(err),
          'ForgeUnavailable',
        );
      }
    },
  };
}
