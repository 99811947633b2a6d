/**
 * PostgreSQL connection helpers that do not need the Prisma client: the reachability check,
 * the mapping of connection failures to DependencyUnavailableError, and URL helpers that keep
 * passwords out of messages.
 */
import pg from 'pg';
import { DependencyUnavailableError } from '../platform/errors';
import { redactUrlPassword } from '../model/redact-url';

/** Prisma URLs select a schema with `?schema=`; node-postgres ignores that parameter. */
export function databaseSchemaOf(url: string): string | undefined {
  try {
    return new URL(url).searchParams.get('schema') ?? undefined;
  } catch {
    return undefined;
  }
}

/** `host:port/database` of a PostgreSQL URL, for messages: never includes user or password. */
export function describeDatabaseAddress(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '<unparseable DATABASE_URL>';
  }
  // A socket directory may be given as ?host=/var/run/postgresql instead of in the authority.
  const host = u.hostname || u.searchParams.get('host') || 'localhost';
  const port = u.port || '5432';
  const database =
    decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres';
  return `${host}:${port}/${database}`;
}

/** The URL with its password replaced, safe to log. */
export function redactDatabaseUrl(url: string): string {
  return redactUrlPassword(url) ?? '<unparseable DATABASE_URL>';
}

export interface CheckDatabaseOptions {
  /** How long to wait for the connection; default 5 s. */
  timeoutMs?: number;
  /** The URL is the embedded server's (DATABASE_URL unset), which changes the advice. */
  embedded?: boolean;
}

/**
 * Connects once and runs `SELECT 1`. Connection refused, unknown host, timeouts, bad credentials
 * and a missing database become a DependencyUnavailableError that names `host:port/db` and says
 * how to fix it; other errors are rethrown unchanged.
 */
export async function checkDatabase(url: string, opts: CheckDatabaseOptions = {}): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: opts.timeoutMs ?? 5000 });
  // A connection that dies after the check must not surface as an unhandled 'error' event.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw toDatabaseUnavailable(err, url, opts) ?? err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs one statement on a connection of its own, closed after it: for statements outside a
 * transaction and outside the app's pool (CREATE or DROP DATABASE, a table's settings).
 */
export async function runStatement(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

type UnavailableKind = 'unreachable' | 'unknown-host' | 'auth' | 'no-database' | 'starting';

/**
 * Duck-typed rather than `instanceof Error`: errors raised by Node's own modules fail that check
 * inside Jest's per-test realm.
 */
function errorParts(err: unknown): { message: string; code?: string } | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { message, code } = err as { message?: unknown; code?: unknown };
  if (typeof message !== 'string') return undefined;
  return { message, code: typeof code === 'string' ? code : undefined };
}

function classify(parts: { message: string; code?: string }): UnavailableKind | undefined {
  switch (parts.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown-host';
    case 'ECONNREFUSED':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ECONNRESET':
    case 'ENOENT': // Unix socket path does not exist.
      return 'unreachable';
    case '28P01': // invalid_password
    case '28000': // invalid_authorization_specification (pg_hba rejected us)
      return 'auth';
    case '3D000': // invalid_catalog_name
      return 'no-database';
    case '57P03': // cannot_connect_now: starting up or shutting down
      return 'starting';
  }
  if (/timeout/i.test(parts.message) && /connect/i.test(parts.message)) return 'unreachable';
  // node-postgres throws plain Errors (no code) when the server wants a password we do not have.
  if (/^SASL: |password must be a string|no password/i.test(parts.message)) return 'auth';
  return undefined;
}

/**
 * Maps a connection error to DependencyUnavailableError, or undefined when it is not about
 * reachability. Shared with the migrator so both report the same way.
 */
export function toDatabaseUnavailable(
  err: unknown,
  url: string,
  opts: { embedded?: boolean } = {},
): DependencyUnavailableError | undefined {
  const parts = errorParts(err);
  const kind = parts && classify(parts);
  if (!parts || !kind) return undefined;
  const address = describeDatabaseAddress(url);
  const cause = sanitizedError(parts, url);
  return new DependencyUnavailableError(
    'PostgreSQL',
    address,
    hintFor(kind, address, opts.embedded ?? false),
    {
      cause,
    },
  );
}

function hintFor(kind: UnavailableKind, address: string, embedded: boolean): string {
  const [hostPort, database] = splitAddress(address);
  switch (kind) {
    case 'unreachable':
      return embedded
        ? 'DATABASE_URL is unset, so the embedded PostgreSQL is expected: start it with `solstice up` ' +
            '(or point DATABASE_URL at a running server).'
        : `Start your PostgreSQL server at ${hostPort} (e.g. \`pg_ctlcluster <version> main start\` or ` +
            '`systemctl start postgresql`) and check DATABASE_URL; or unset DATABASE_URL and run ' +
            '`solstice up` to use the embedded PostgreSQL.';
    case 'unknown-host':
      return (
        `The host in DATABASE_URL (${hostPort}) cannot be resolved: check its spelling and your DNS, or unset ` +
        'DATABASE_URL and run `solstice up` to use the embedded PostgreSQL.'
      );
    case 'auth':
      return (
        `The server at ${hostPort} rejected the user or password in DATABASE_URL (the password is not shown). ` +
        "Fix the credentials in DATABASE_URL, or the server's pg_hba.conf."
      );
    case 'no-database':
      return (
        `Database "${database}" does not exist on ${hostPort}. Create it (\`createdb -h <host> -p <port> -U <user> ${database}\`) ` +
        'or fix the database name in DATABASE_URL.'
      );
    case 'starting':
      return `PostgreSQL at ${hostPort} is starting up or shutting down; try again in a few seconds.`;
  }
}

function splitAddress(address: string): [string, string] {
  const slash = address.indexOf('/');
  return slash < 0 ? [address, ''] : [address.slice(0, slash), address.slice(slash + 1)];
}

/**
 * node-postgres messages do not contain the password today; this keeps it that way for whatever
 * reaches logs through `cause`. Only URL-shaped occurrences are replaced: a bare password such
 * as the embedded server's "postgres" also appears legitimately as the user name.
 */
function sanitizedError(err: { message: string; code?: string }, url: string): Error {
  let raw = '';
  try {
    raw = new URL(url).password;
  } catch {
    // Unparseable URL: only the whole-URL replacement below applies.
  }
  let message = err.message.split(url).join(redactDatabaseUrl(url));
  if (raw) {
    for (const form of new Set([raw, decodeURIComponent(raw)]))
      message = message.split(`:${form}@`).join(':***@');
  }
  const clean = new Error(message);
  if (err.code) Object.assign(clean, { code: err.code });
  return clean;
}
