/** Exponential backoff with jitter, shared by unary retries and log-stream reconnects. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 10_000 };

/**
 * Delay before retry number `attempt` (0-based): the exponential step capped at maxMs, of which
 * a random half is taken away ("equal jitter"), so many runners that lost the same server do
 * not reconnect in lock-step, yet no retry comes sooner than half a step.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random = Math.random,
): number {
  const step = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + (random() * step) / 2);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
