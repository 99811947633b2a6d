/**
 * Errors that end the runner, each with the process exit code a supervisor (cloud-init, the
 * local provider) sees. Exit codes follow sysexits.h where one fits.
 */
import { AuthError, SolsticeError } from '../platform/errors';

/** Exit codes other than the job script's own. */
export const EXIT = {
  /** The job context is incomplete or malformed (EX_USAGE-like; same as ConfigError). */
  CONFIG: 2,
  /** The job did not run: checkout failed or the commit has no job definition. */
  JOB_NOT_RUN: 1,
  /** A bug or resource exhaustion in the runner itself (EX_SOFTWARE). */
  RUNNER_ERROR: 70,
  /** The log service stayed unreachable past the retry budget (EX_TEMPFAIL). */
  UNAVAILABLE: 75,
  /** The log service rejected the job token (EX_NOPERM). */
  AUTH: 77,
} as const;

/** The log service could not be reached (or kept failing) for longer than the retry budget. */
export class LogServiceUnavailableError extends SolsticeError {
  override readonly exitCode = EXIT.UNAVAILABLE;
}

/** The log service refused the job token (UNAUTHENTICATED / PERMISSION_DENIED). */
export class JobTokenRejectedError extends AuthError {
  override readonly exitCode = EXIT.AUTH;
}

/** The log service answered with an error retrying cannot fix (INVALID_ARGUMENT, UNIMPLEMENTED, ...). */
export class LogServiceRejectedError extends SolsticeError {
  override readonly exitCode = EXIT.RUNNER_ERROR;
}
