/** Copies a finished job's log from the database into the blob store as one text file. */
import { Readable } from 'node:stream';
import type { BlobStore } from '../common/blob-store';
import type { JobStore } from '../common/job-store';

const PAGE = 5000;

export function logBlobKey(jobId: string): string {
  return `jobs/${jobId}/log.txt`;
}

export async function finalizeLog(jobs: JobStore, blobs: BlobStore, jobId: string): Promise<string> {
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
  await blobs.put(key, Readable.from(lines()));
  return key;
}
