/** Maps a runner's bearer token to the one job it may speak for. */
import type { Metadata } from '@grpc/grpc-js';
import { bearerTokenFrom } from '../../common/runner-proto';
import { AuthError, ForbiddenError } from '../../common/errors';
import { hashJobToken } from '../../common/job-token';
import type { JobStore } from '../../common/job-store';

export interface AuthenticatedJob {
  id: string;
  workflowId: string;
  attempt: number;
}

function bearerToken(metadata: Metadata): string {
  const token = bearerTokenFrom(metadata);
  if (!token) throw new AuthError('missing bearer token (metadata "authorization: Bearer <job token>")');
  return token;
}

/**
 * A token is valid only for the job it was minted for, only for the current machine attempt,
 * and only until the job is finalized (finalize clears the stored hash).
 */
export async function authenticate(
  jobs: JobStore,
  metadata: Metadata,
  claimedJobId: string,
): Promise<AuthenticatedJob> {
  const job = await jobs.jobForToken(hashJobToken(bearerToken(metadata)));
  if (!job) throw new AuthError('job token is unknown, revoked, or its job has ended');
  if (job.id !== claimedJobId) throw new ForbiddenError('job token belongs to another job');
  return { id: job.id, workflowId: job.workflowId, attempt: job.attempt };
}
