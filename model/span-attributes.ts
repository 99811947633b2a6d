/**
 * Span attribute names for Solstice's own facts, the same in every process and in the runner
 * (so this module imports only model/repo-url, which needs nothing outside model/: the runner
 * bundle stays small). Only ids, the repository (without credentials) and the commit go into
 * spans: never tokens, secrets or log text.
 */
import { repoUrlWithoutCredentials } from './repo-url';

export const ATTR = {
  jobId: 'solstice.job.id',
  repo: 'solstice.repo',
  commit: 'solstice.commit',
  forge: 'solstice.forge',
  requestId: 'solstice.request.id',
  pipelineId: 'solstice.pipeline.id',
  webhookOutcome: 'solstice.webhook.outcome',
  step: 'solstice.step.name',
  exitCode: 'solstice.exit_code',
  /** When the runner's process started (epoch ms): download before it, Node's start after it. */
  runnerProcessStart: 'solstice.runner.process_start_ms',
} as const;

/**
 * A repository URL fit for a span attribute: without user name, password (a clone URL may
 * carry a token), query or fragment. Local paths pass unchanged.
 */
export const repoAttribute = repoUrlWithoutCredentials;
