/** Uniquely named databases on the machine's PostgreSQL for tests: empty or migrated, dropped afterwards. */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { migrate } from '../../storage/migrate';

/** The machine's PostgreSQL (trust auth); override with SOLSTICE_TEST_PG_URL. */
export const ADMIN_URL = process.env.SOLSTICE_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export function uniqueDatabaseName(prefix = 'solstice_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

export function urlFor(database: string, base = ADMIN_URL): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A new database with nothing in it (not migrated). */
export async function createEmptyDatabase(prefix?: string): Promise<TestDatabase> {
  const name = uniqueDatabaseName(prefix);
  await withClient(ADMIN_URL, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
  return { name, url: urlFor(name), drop: () => dropDatabase(name) };
}

/** A new database with every migration applied. */
export async function createTestDatabase(prefix = 'solstice_test'): Promise<TestDatabase> {
  const db = await createEmptyDatabase(prefix);
  await migrate({ databaseUrl: db.url });
  return db;
}

export async function dropDatabase(name: string): Promise<void> {
  await withClient(ADMIN_URL, (c) =>
    c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`),
  );
}

/**
 * Makes PostgreSQL refuse, with a real data exception (SQLSTATE 22023, 'line refused by the
 * test'), any log chunk holding `text`: how a line the database cannot store looks to the log
 * service. Returns the function that removes the trigger again.
 */
export async function refuseLogText(
  db: { $executeRawUnsafe(sql: string): Promise<unknown> },
  text: string,
): Promise<() => Promise<void>> {
  const literal = `'${text.replace(/'/g, "''")}'`;
  await db.$executeRawUnsafe(`
    CREATE OR REPLACE FUNCTION refuse_marked_line() RETURNS trigger AS $$
    BEGIN
      IF position(convert_to(${literal}, 'UTF8') in NEW.data) > 0 THEN
        RAISE EXCEPTION 'line refused by the test' USING ERRCODE = '22023';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql`);
  await db.$executeRawUnsafe(
    'CREATE TRIGGER refuse_marked_line BEFORE INSERT OR UPDATE ON log_chunks FOR EACH ROW EXECUTE FUNCTION refuse_marked_line()',
  );
  return async () => {
    await db.$executeRawUnsafe('DROP TRIGGER refuse_marked_line ON log_chunks');
  };
}
