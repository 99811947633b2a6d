/**
 * The one place that creates the Prisma client. Prisma 7 has no query engine binary: the
 * generated client runs its queries through `@prisma/adapter-pg`, i.e. a node-postgres pool that
 * this module sizes from the settings.
 *
 * The reachability check lives in ./db-connection (the migrator needs it without loading the
 * Prisma client); it is re-exported here so services import everything database from one place.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';
import { type Config, effectiveDatabaseUrl } from './config';
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

export function createDb(cfg: DbConfig, opts: CreateDbOptions = {}): Db {
  const url = effectiveDatabaseUrl(cfg);
  const adapter = new PrismaPg(
    {
      connectionString: url,
      // A pool of zero connections could never serve a query.
      max: Math.max(1, cfg.dbPoolMaxSize),
      connectionTimeoutMillis: cfg.dbPoolTimeoutMs,
    },
    { schema: databaseSchemaOf(url), onPoolError: opts.onPoolError },
  );
  return new PrismaClient({ adapter });
}
