/** Maps a runner's bearer token to the one job it may speak for. */
import type { Metadata } from '@grpc/grpc-js';
import { bearerTokenFrom } from '../model/runner-proto';
import { AuthError, ForbiddenError } from '../platform/errors';
import { hashJobToken } from '../model/job-token';
import type { JobStore } from '../storage/job-store';
import { FINAL_STATES, type JobState } from '../model/domain';

export interface AuthenticatedJob {
  id: string;
  workflowId: string;
  attempt: number;
}

type TokenLookup = Pick<JobStore, 'jobForToken'>;

function bearerToken(metadata: Metadata): string {
  const token = bearerTokenFrom(metadata);
  if (!token) throw new AuthError('missing bearer token (metadata "authorization: Bearer <job token>")');
  return token;
}

/**
 * How long a token lookup is reused by log batches. Every call and every batch is checked
 * (unary calls without the cache), so a token revoked mid-stream (the job ended, timed out or was cancelled, or a new machine attempt got a
 * new token) stops working within this time without a database query per batch.
 */
export const TOKEN_CACHE_MS = 2000;

/**
 * Token lookups, remembered for `ttlMs` (0: no caching). Only live tokens are cached; an
 * unknown token is looked up every time (it is rare and must start working once minted).
 */
export class TokenCache {
  private readonly entries = new Map<string, { job: AuthenticatedJob; until: number }>();

  constructor(
    private readonly jobs: TokenLookup,
    private readonly ttlMs: number = TOKEN_CACHE_MS,
  ) {}

  /** `fresh`: skip the cache (unary calls, which are rare and act on the job's workflow). */
  async lookup(tokenHash: string, fresh = false): Promise<AuthenticatedJob | undefined> {
    const now = Date.now();
    const hit = this.entries.get(tokenHash);
    if (hit && hit.until > now && !fresh) return hit.job;
    this.entries.delete(tokenHash);
    const row = await this.jobs.jobForToken(tokenHash);
    // finalize clears the hash; a final state with a hash still set is a job whose finalize is
    // in flight: its token has expired all the same.
    if (!row || FINAL_STATES.includes(row.state as JobState)) return undefined;
    const job = { id: row.id, workflowId: row.workflowId, attempt: row.attempt };
    if (this.ttlMs > 0) {
      if (this.entries.size > 10_000) this.entries.clear(); // bounded: at most a burst of lookups
      // Never past the token's own expiry.
      this.entries.set(tokenHash, {
        job,
        until: Math.min(now + this.ttlMs, row.expiresAt?.getTime() ?? Infinity),
      });
    }
    return job;
  }
}

/**
 * A token is valid only for the job it was minted for, only for the current machine attempt,
 * and only until the job ends (finalize clears the stored hash) or its expiry time passes
 * (the job's boot and run timeouts and a grace period: a backstop for a terminated workflow).
 */
export async function authenticate(
  tokens: TokenCache,
  metadata: Metadata,
  claimedJobId: string,
  { fresh = false }: { fresh?: boolean } = {},
): Promise<AuthenticatedJob> {
  const job = await tokens.lookup(hashJobToken(bearerToken(metadata)), fresh);
  if (!job) throw new AuthError('job token is unknown, revoked, or its job has ended');
  if (job.id !== claimedJobId) throw new ForbiddenError('job token belongs to another job');
  return job;
}
