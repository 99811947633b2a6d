/**
 * Copies a finished job's log from the database into the blob store as one gzip-compressed
 * text file (`logBlobKey`). The database keeps its lines for the live view and `solstice logs`.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { BlobStore } from '../storage/blob-store';
import type { JobStore } from '../storage/job-store';

const PAGE = 5000;

/** The one place that names where a job's final log is stored. */
export function logBlobKey(jobId: string): string {
  return `jobs/${jobId}/log.txt.gz`;
}

export const LOG_BLOB_CONTENT_TYPE = 'application/gzip';

export async function finalizeLog(
  jobs: Pick<JobStore, 'logLinesAfter'>,
  blobs: BlobStore,
  jobId: string,
): Promise<string> {
  async function* lines() {
    let after = 0;
    for (;;) {
      const page = await jobs.logLinesAfter(jobId, after, PAGE);
      if (page.length === 0) return;
      yield page.map((l) => `${l.text}\n`).join('');
      after = page[page.length - 1].seq;
    }
  }
  const key = logBlobKey(jobId);
  const gzip = createGzip();
  // The store reads the compressed stream while the pages are read and compressed: a 1 GB log
  // never sits in memory whole. Either side failing fails both.
  const feeding = pipeline(Readable.from(lines()), gzip);
  const storing = blobs.put(key, gzip, { contentType: LOG_BLOB_CONTENT_TYPE }).catch((err: unknown) => {
    gzip.destroy(err instanceof Error ? err : new Error(String(err))); // stop reading pages
    throw err;
  });
  await Promise.all([storing, feeding]);
  return key;
}
