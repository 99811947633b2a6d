/**
 * Moves a finished job's log from PostgreSQL into the blob store: gzip (`logBlobKey`) plus a
 * line index, after which the job's chunks are deleted (storage/log-store.ts does the work).
 */
import type { BlobStore } from '../storage/blob-store';
import type { JobStore } from '../storage/job-store';
import { LogStore } from '../storage/log-store';

export { logBlobKey, logIndexKey, LOG_BLOB_CONTENT_TYPE } from '../storage/log-store';

export async function finalizeLog(
  jobs: Pick<JobStore, 'db'>,
  blobs: BlobStore,
  jobId: string,
): Promise<string> {
  return new LogStore(jobs.db, blobs).archive(jobId);
}
