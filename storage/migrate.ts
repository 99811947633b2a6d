/**
 * Applies prisma/migrations the way `prisma migrate deploy` does, without Prisma's schema-engine
 * binary (which cannot be downloaded on our machines).
 *
 * The bookkeeping is Prisma's own, so either tool can take over from the other: the same
 * `_prisma_migrations` table and rows (checksum = SHA-256 hex of migration.sql, applied_steps_count
 * 1 once finished, logs on failure), the same advisory lock (72707369), and the same refusal to
 * continue past a recorded failure (P3009). Unlike `migrate deploy`, we also refuse when an applied
 * migration.sql was edited afterwards, which Prisma only reports in `migrate dev` / `migrate status`.
 *
 * One difference on purpose: each script runs in an explicit transaction together with the row
 * update that marks it finished, so a migration is either applied and recorded, or neither.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { SolsticeError } from '../platform/errors';
import { databaseSchemaOf, describeDatabaseAddress, toDatabaseUnavailable } from './db-connection';

/** Prisma Migrate's advisory lock key; sharing it keeps us and `prisma migrate` mutually exclusive. */
export const PRISMA_MIGRATE_LOCK_KEY = 72707369;
export const MIGRATIONS_TABLE = '_prisma_migrations';

/** Prisma's DDL, byte for byte, so `prisma migrate status` accepts a table we created. */
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
`;

const RESOLVE_DOCS = 'https://pris.ly/d/migrate-resolve';

export type MigrationErrorCode =
  'P3005' | 'P3009' | 'P3018' | 'P3019' | 'CHECKSUM_MISMATCH' | 'LOCK_TIMEOUT' | 'LAYOUT';

/** Migrations cannot be applied; `code` follows Prisma's error codes where one exists. */
export class MigrationError extends SolsticeError {
  constructor(
    readonly code: MigrationErrorCode,
    message: string,
    hint: string,
    options?: { cause?: unknown },
  ) {
    super(message, hint, options);
  }
}

export interface LocalMigration {
  name: string;
  script: string;
  checksum: string;
}

export interface MigrateOptions {
  databaseUrl: string;
  /** Defaults to the repository's prisma/migrations. */
  migrationsDir?: string;
  log?: (message: string) => void;
  /** How long to wait for another process holding the migration lock; default 60 s. */
  lockTimeoutMs?: number;
}

export interface MigrateResult {
  /** Names of the migrations this call applied, in order. */
  applied: string[];
  /** Local migrations that were already applied before this call. */
  alreadyApplied: number;
}

/** A row of `_prisma_migrations`, as Prisma defines it. */
export interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

/**
 * prisma/migrations relative to this file: `storage/` when run through ts-jest,
 * `dist/storage/` in the build (tsc does not copy the SQL files into dist).
 */
export function defaultMigrationsDir(): string {
  const candidates = [
    path.resolve(__dirname, '..', 'prisma', 'migrations'),
    path.resolve(__dirname, '..', '..', 'prisma', 'migrations'),
  ];
  return candidates.find((dir) => fs.existsSync(dir)) ?? candidates[0];
}

export function migrationChecksum(script: string | Buffer): string {
  return createHash('sha256').update(script).digest('hex');
}

/**
 * Prisma's rule: also accept the script with its line endings converted either way (git may
 * rewrite them on checkout), and the unpadded hex format older Prisma versions stored.
 */
export function scriptMatchesChecksum(script: string, checksum: string): boolean {
  const variants = [script, script.replace(/\r\n/g, '\n'), script.replace(/\r?\n/g, '\r\n')];
  return variants.some((v) => {
    const digest = createHash('sha256').update(v).digest();
    if (checksum.length === 64 || checksum.length === 0) return digest.toString('hex') === checksum;
    return Array.from(digest, (b) => b.toString(16)).join('') === checksum;
  });
}

/** Reads the migration folders in the order Prisma applies them (by folder name). */
export function readLocalMigrations(migrationsDir: string): LocalMigration[] {
  if (!fs.existsSync(migrationsDir)) {
    throw new MigrationError(
      'LAYOUT',
      `Migrations folder ${migrationsDir} does not exist`,
      'Pass the path of prisma/migrations.',
    );
  }
  checkLockfile(migrationsDir);
  return fs
    .readdirSync(migrationsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const file = path.join(migrationsDir, name, 'migration.sql');
      if (!fs.existsSync(file)) {
        throw new MigrationError(
          'LAYOUT',
          `Migration folder ${name} has no migration.sql`,
          `Add ${file} or remove the folder.`,
        );
      }
      const bytes = fs.readFileSync(file);
      return { name, script: bytes.toString('utf8'), checksum: migrationChecksum(bytes) };
    });
}

function checkLockfile(migrationsDir: string): void {
  const lockfile = path.join(migrationsDir, 'migration_lock.toml');
  if (!fs.existsSync(lockfile)) return;
  const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(fs.readFileSync(lockfile, 'utf8'))?.[1];
  if (provider !== undefined && provider !== 'postgresql') {
    throw new MigrationError(
      'P3019',
      `The datasource provider \`postgresql\` does not match \`${provider}\` in ${lockfile}`,
      'These migrations were written for another database; they cannot be applied to PostgreSQL.',
    );
  }
}

export async function migrate(opts: MigrateOptions): Promise<MigrateResult> {
  const log = opts.log ?? (() => undefined);
  const local = readLocalMigrations(opts.migrationsDir ?? defaultMigrationsDir());
  const client = await connect(opts.databaseUrl);
  try {
    await acquireLock(client, opts.lockTimeoutMs ?? 60_000, opts.databaseUrl);
    try {
      await ensureMigrationsTable(client, opts.databaseUrl);
      const rows = await listRows(client);
      refuseFailedMigrations(rows);
      refuseEditedMigrations(rows, local);

      const done = new Set(rows.filter((r) => r.rolled_back_at === null).map((r) => r.migration_name));
      const localNames = new Set(local.map((m) => m.name));
      const unknown = [...done].filter((name) => !localNames.has(name));
      if (unknown.length > 0) {
        log(
          `Applied to the database but missing from ${opts.migrationsDir ?? 'prisma/migrations'}: ${unknown.join(', ')}`,
        );
      }

      const pending = local.filter((m) => !done.has(m.name));
      const applied: string[] = [];
      for (const migration of pending) {
        log(`Applying migration \`${migration.name}\``);
        await applyOne(client, migration);
        applied.push(migration.name);
      }
      return { applied, alreadyApplied: local.length - pending.length };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface MigrationStatus {
  /** Local migrations the database has, in order. */
  applied: string[];
  /** Local migrations the database lacks, in the order `migrate` would apply them. */
  pending: string[];
  /** Migrations that started and never finished (they block `migrate` until resolved). */
  failed: string[];
  /** Applied to the database but unknown to this build (the database is newer than the code). */
  unknown: string[];
}

/** What `migrate` would do, without doing it and without taking the migration lock. */
export async function migrationStatus(databaseUrl: string, migrationsDir?: string): Promise<MigrationStatus> {
  const local = readLocalMigrations(migrationsDir ?? defaultMigrationsDir());
  const client = await connect(databaseUrl);
  try {
    const { rows: tables } = await client.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname = $1`,
      [MIGRATIONS_TABLE],
    );
    const rows = tables.length > 0 ? await listRows(client) : [];
    const live = rows.filter((r) => r.rolled_back_at === null);
    const done = new Set(live.filter((r) => r.finished_at !== null).map((r) => r.migration_name));
    const localNames = new Set(local.map((m) => m.name));
    return {
      applied: local.filter((m) => done.has(m.name)).map((m) => m.name),
      pending: local.filter((m) => !done.has(m.name)).map((m) => m.name),
      failed: live.filter((r) => r.finished_at === null).map((r) => r.migration_name),
      unknown: [...done].filter((name) => !localNames.has(name)),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw toDatabaseUnavailable(err, url) ?? err;
  }
  // Migrate into the schema the Prisma client will query (createDb passes the same `?schema=`).
  const schema = databaseSchemaOf(url);
  if (schema) {
    const ident = client.escapeIdentifier(schema);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident}`);
      await client.query(`SET search_path TO ${ident}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }
  return client;
}

async function acquireLock(client: pg.Client, timeoutMs: number, url: string): Promise<void> {
  // lock_timeout bounds the wait for the advisory lock; it is reset so it does not apply to the
  // migration scripts themselves.
  await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK_KEY]);
  } catch (err) {
    if ((err as { code?: unknown }).code === '55P03') {
      throw new MigrationError(
        'LOCK_TIMEOUT',
        `Timed out after ${timeoutMs} ms waiting for the migration lock on ${describeDatabaseAddress(url)}`,
        `Another process is migrating this database (it holds pg_advisory_lock(${PRISMA_MIGRATE_LOCK_KEY})). ` +
          'Wait for it to finish, or find it with: SELECT pid, backend_start, query FROM pg_stat_activity ' +
          `JOIN pg_locks USING (pid) WHERE locktype = 'advisory' AND objid = ${PRISMA_MIGRATE_LOCK_KEY};`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    await client.query('RESET lock_timeout').catch(() => undefined);
  }
}

async function ensureMigrationsTable(client: pg.Client, url: string): Promise<void> {
  // Like Prisma, look only at the first schema of the search_path (normally "public").
  const { rows } = await client.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname = current_schema()`,
  );
  if (rows.some((r) => r.relname === MIGRATIONS_TABLE)) return;
  if (rows.length > 0) {
    throw new MigrationError(
      'P3005',
      `The database schema is not empty and has no ${MIGRATIONS_TABLE} table (${describeDatabaseAddress(url)}: ${rows
        .map((r) => r.relname)
        .slice(0, 5)
        .join(', ')}${rows.length > 5 ? ', ...' : ''})`,
      'This database was not created by these migrations. Use an empty database, or baseline it: ' +
        'https://pris.ly/d/migrate-baseline',
    );
  }
  await client.query(CREATE_MIGRATIONS_TABLE);
}

async function listRows(client: pg.Client): Promise<MigrationRow[]> {
  const { rows } = await client.query<MigrationRow>(
    `SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count
       FROM ${MIGRATIONS_TABLE} ORDER BY started_at ASC`,
  );
  return rows;
}

function refuseFailedMigrations(rows: MigrationRow[]): void {
  const failed = rows.filter((r) => r.finished_at === null && r.rolled_back_at === null);
  if (failed.length === 0) return;
  const details = failed
    .map((r) => {
      const logs = r.logs?.trim() ? ` with the following logs:\n${r.logs.trim()}` : '';
      return `The \`${r.migration_name}\` migration started at ${r.started_at.toISOString()} failed${logs}`;
    })
    .join('\n');
  const names = failed.map((r) => `'${r.migration_name}'`).join(', ');
  throw new MigrationError(
    'P3009',
    `migrate found failed migrations in the target database, new migrations will not be applied. ` +
      `Read more about how to resolve migration issues in a production database: ${RESOLVE_DOCS}\n${details}`,
    'Each migration runs in a transaction, so a failed one left no changes behind. Fix its migration.sql, ' +
      `mark the failure as rolled back — UPDATE ${MIGRATIONS_TABLE} SET rolled_back_at = now() ` +
      `WHERE migration_name IN (${names}) AND finished_at IS NULL; — and migrate again.`,
  );
}

function refuseEditedMigrations(rows: MigrationRow[], local: LocalMigration[]): void {
  const byName = new Map(local.map((m) => [m.name, m]));
  const edited = rows.filter((r) => {
    const m = byName.get(r.migration_name);
    return (
      r.finished_at !== null &&
      r.rolled_back_at === null &&
      m !== undefined &&
      !scriptMatchesChecksum(m.script, r.checksum)
    );
  });
  if (edited.length === 0) return;
  const names = edited.map((r) => `\`${r.migration_name}\``).join(', ');
  throw new MigrationError(
    'CHECKSUM_MISMATCH',
    `The migration ${names} was modified after it was applied (its migration.sql no longer matches the checksum ` +
      `recorded in ${MIGRATIONS_TABLE})`,
    'An applied migration must not change: restore its migration.sql (e.g. `git checkout -- prisma/migrations`) ' +
      'and put the change into a new migration.',
  );
}

async function applyOne(client: pg.Client, migration: LocalMigration): Promise<void> {
  const id = randomUUID();
  // Recorded before the script runs, as Prisma does, so a crash mid-way leaves a visible trace.
  await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (id, checksum, migration_name) VALUES ($1, $2, $3)`, [
    id,
    migration.checksum,
    migration.name,
  ]);
  try {
    await client.query('BEGIN');
    // No parameters: node-postgres then uses the simple query protocol, which accepts a
    // multi-statement script just like Prisma's engine sends it.
    await client.query(migration.script);
    await client.query(
      `UPDATE ${MIGRATIONS_TABLE} SET applied_steps_count = applied_steps_count + 1, finished_at = now() WHERE id = $1`,
      [id],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    const dbErr = err as { code?: unknown; message?: unknown; position?: unknown };
    const code = typeof dbErr.code === 'string' ? dbErr.code : 'none';
    const position =
      typeof dbErr.position === 'string' ? describePosition(migration.script, Number(dbErr.position)) : '';
    const databaseError = `${String(dbErr.message)}${position}`;
    const logs =
      `A migration failed to apply. New migrations cannot be applied before the error is recovered from. ` +
      `Read more about how to resolve migration issues in a production database: ${RESOLVE_DOCS}\n\n` +
      `Migration name: ${migration.name}\n\nDatabase error code: ${code}\n\nDatabase error:\n${databaseError}`;
    await client
      .query(`UPDATE ${MIGRATIONS_TABLE} SET logs = $2 WHERE id = $1`, [id, logs])
      .catch(() => undefined);
    throw new MigrationError(
      'P3018',
      logs,
      'Nothing of this migration was applied (it ran in a transaction). Fix its migration.sql, then mark the ' +
        `failure as rolled back — UPDATE ${MIGRATIONS_TABLE} SET rolled_back_at = now() WHERE migration_name = ` +
        `'${migration.name}' AND finished_at IS NULL; — and migrate again.`,
      { cause: err },
    );
  }
}

/** Line number and text of a 1-based character offset, so the error points into migration.sql. */
function describePosition(script: string, position: number): string {
  if (!Number.isInteger(position) || position < 1) return '';
  const before = script.slice(0, position - 1);
  const line = before.split('\n').length;
  const text = script.split('\n')[line - 1] ?? '';
  return `\n\nPosition: line ${line}: ${text.trim()}`;
}

/**
 * Creates the database named in `url` when it does not exist yet, connecting to the server's
 * `postgres` maintenance database. Returns whether it created it. Safe to race: a concurrent
 * creator makes us see "already exists", which counts as success.
 */
export async function createDatabaseIfMissing(url: string): Promise<boolean> {
  const target = new URL(url);
  const database = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!database)
    throw new MigrationError(
      'LAYOUT',
      'DATABASE_URL names no database',
      'Add the database name to the URL path.',
    );

  let lastError: unknown;
  for (const maintenance of ['postgres', 'template1']) {
    const admin = new URL(url);
    admin.pathname = `/${maintenance}`;
    const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 10_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      lastError = err;
      // Only a missing maintenance database is worth trying the next one for.
      if ((err as { code?: unknown }).code === '3D000') continue;
      throw toDatabaseUnavailable(err, url) ?? err;
    }
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (rowCount) return false;
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
      return true;
    } catch (err) {
      if ((err as { code?: unknown }).code === '42P04') return false; // duplicate_database
      throw err;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  throw toDatabaseUnavailable(lastError, url) ?? lastError;
}
