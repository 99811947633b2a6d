/**
 * The one place that creates the Prisma client. Prisma 7 has no query engine binary: the
 * generated client runs its queries through `@prisma/adapter-pg`, i.e. a node-postgres pool that
 * this module sizes from the settings.
 *
 * The reachability check lives in ./db-connection (the migrator needs it without loading the
 * Prisma client); it is re-exported here so services import everything database from one place.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client';
import { type Config, effectiveDatabaseUrl } from '../platform/config';
import { databaseSchemaOf } from './db-connection';

export {
  checkDatabase,
  describeDatabaseAddress,
  redactDatabaseUrl,
  toDatabaseUnavailable,
  type CheckDatabaseOptions,
} from './db-connection';

export type Db = PrismaClient;

export type DbConfig = Pick<Config, 'databaseUrl' | 'embeddedPgPort' | 'dbPoolMaxSize' | 'dbPoolTimeoutMs'>;

export interface CreateDbOptions {
  /** Errors of idle pooled connections (e.g. the server restarted); they must not crash the process. */
  onPoolError?: (err: Error) => void;
}

/** The node-postgres pool under each client createDb made (see pgPool). */
const pools = new WeakMap<Db, pg.Pool>();

export function createDb(cfg: DbConfig, opts: CreateDbOptions = {}): Db {
  const url = effectiveDatabaseUrl(cfg);
  const schema = databaseSchemaOf(url);
  const pool = new pg.Pool({
    connectionString: url,
    // A pool of zero connections could never serve a query.
    max: Math.max(1, cfg.dbPoolMaxSize),
    connectionTimeoutMillis: cfg.dbPoolTimeoutMs,
    // Prisma qualifies its own queries with the schema; this makes raw SQL see the same tables.
    ...(schema ? { options: `-c search_path=${quoteIdentifier(schema)}` } : {}),
  });
  // An idle client that dies is dropped by the pool; without a listener its 'error' would end
  // the process. PrismaPg adds its own (reporting to onPoolError) only once Prisma connects,
  // and the log insert may use the pool first.
  pool.on('error', () => undefined);
  const adapter = new PrismaPg(pool, { schema, onPoolError: opts.onPoolError, disposeExternalPool: true });
  const db = new PrismaClient({ adapter });
  pools.set(db, pool);
  return db;
}

/**
 * The connection pool under `db`, for the one query that must not go through Prisma: storing log
 * lines. Prisma's debug module keeps the arguments of its last 100 queries whether or not
 * debugging is on; for log inserts that is up to 100 groups of log text held in memory (the log
 * service's heap grew by hundreds of MiB in bench/logs.ts).
 */
export function pgPool(db: Db): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('pgPool: this client was not made by createDb');
  return pool;
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * The rows of a read straight on the pool. The reads that `status`, `jobs`, `logs` and the job
 * page make go here rather than through Prisma: a process's first Prisma query starts Prisma's
 * query compiler (WebAssembly, about 250 ms of CPU here) and each new query shape costs about 30 ms
 * more, which was most of a `solstice status`. Columns come back as named (alias them to the
 * record's field names); int8 comes back as a string.
 */
export async function selectRows<T>(db: Db, text: string, values: unknown[] = []): Promise<T[]> {
  return (await pgPool(db).query(text, values)).rows as T[];
}
