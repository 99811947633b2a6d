/**
 * Typed errors. Every error a user can cause or fix carries a `hint` that says what to do;
 * the CLI prints `message` and `hint` without a stack trace (unless --verbose / SOLSTICE_DEBUG=1).
 */
export class SolsticeError extends Error {
  /** Process exit code the CLI uses for this kind of error. */
  readonly exitCode: number = 1;

  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A setting is missing or malformed. */
export class ConfigError extends SolsticeError {
  override readonly exitCode = 2;
}

/** Input the user gave us (a repo, a commit, a job id) is wrong; nothing was changed. */
export class InputError extends SolsticeError {
  override readonly exitCode = 2;
}

export class NotFoundError extends SolsticeError {}

/** A certificate or key file a TLS setting names cannot be read, or the set of them is incomplete. */
export class TlsSettingError extends ConfigError {
  constructor(
    readonly setting: string,
    readonly file: string | undefined,
    message: string,
    hint: string,
    options?: { cause?: unknown },
  ) {
    super(message, hint, options);
  }
}

/** A service we depend on (Temporal, PostgreSQL, RabbitMQ, ...) cannot be reached. */
export class DependencyUnavailableError extends SolsticeError {
  override readonly exitCode = 69; // EX_UNAVAILABLE

  constructor(
    readonly service: string,
    readonly address: string,
    hint: string,
    options?: { cause?: unknown },
  ) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`${service} is not reachable at ${address}${reason}`, hint, options);
  }
}

/** A runner presented no token, or one that is unknown or revoked. */
export class AuthError extends SolsticeError {}

/** A runner presented a valid token for a different job. */
export class ForbiddenError extends SolsticeError {}

/** A provider could not create or reach a machine: infrastructure, so worth retrying. */
export class ProvisioningError extends SolsticeError {}

/** A tool that bootstrap should have built is missing. */
export class MissingToolError extends SolsticeError {}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
