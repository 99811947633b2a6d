/** checkDatabase turns "cannot reach PostgreSQL" into an actionable error that never shows the password. */
import { checkDatabase, describeDatabaseAddress, redactDatabaseUrl } from '../../../storage/db';
import { DependencyUnavailableError } from '../../../platform/errors';
import { freePort } from '../../../platform/net';
import { ADMIN_URL, uniqueDatabaseName, urlFor } from '../../support/database';

const PASSWORD = 'pw-Zq8-never-print-me';

async function unavailable(
  url: string,
  opts?: Parameters<typeof checkDatabase>[1],
): Promise<DependencyUnavailableError> {
  const err: unknown = await checkDatabase(url, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DependencyUnavailableError);
  return err as DependencyUnavailableError;
}

function expectNoPassword(err: DependencyUnavailableError): void {
  const everything = [
    err.message,
    err.hint,
    err.stack,
    err.cause instanceof Error ? err.cause.message : String(err.cause),
  ].join('\n');
  expect(everything).not.toContain(PASSWORD);
}

describe('checkDatabase', () => {
  it('passes for a reachable database', async () => {
    await expect(checkDatabase(ADMIN_URL)).resolves.toBeUndefined();
  });

  it('names host:port/db and says how to start PostgreSQL when the port is closed', async () => {
    const port = await freePort();
    const err = await unavailable(`postgresql://solstice:${PASSWORD}@127.0.0.1:${port}/solstice`);
    expect(err.service).toBe('PostgreSQL');
    expect(err.address).toBe(`127.0.0.1:${port}/solstice`);
    expect(err.message).toContain(`PostgreSQL is not reachable at 127.0.0.1:${port}/solstice`);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.hint).toMatch(/pg_ctlcluster|systemctl/);
    expect(err.hint).toContain('solstice up');
    expect(err.exitCode).toBe(69);
    expectNoPassword(err);
  });

  it('points at `solstice up` for the embedded server', async () => {
    const port = await freePort();
    const err = await unavailable(`postgresql://postgres:${PASSWORD}@127.0.0.1:${port}/solstice`, {
      embedded: true,
    });
    expect(err.hint).toMatch(/^DATABASE_URL is unset.*`solstice up`/);
    expectNoPassword(err);
  });

  it('reports an unknown host', async () => {
    const err = await unavailable(`postgresql://u:${PASSWORD}@no-such-host.invalid:5432/x`);
    expect(err.address).toBe('no-such-host.invalid:5432/x');
    expect(err.hint).toContain('cannot be resolved');
    expectNoPassword(err);
  });

  it('says when the database does not exist', async () => {
    const name = uniqueDatabaseName('solstice_missing');
    const url = new URL(urlFor(name));
    url.password = PASSWORD;
    const err = await unavailable(url.toString());
    expect(err.address).toMatch(new RegExp(`:\\d+/${name}$`));
    expect(err.hint).toContain(`Database "${name}" does not exist`);
    expect(err.hint).toContain('createdb');
    expectNoPassword(err);
  });

  it('describes and redacts URLs without the password', () => {
    const url = `postgresql://me:${PASSWORD}@db.example:6543/ci?schema=s`;
    expect(describeDatabaseAddress(url)).toBe('db.example:6543/ci');
    expect(redactDatabaseUrl(url)).toBe('postgresql://me:***@db.example:6543/ci?schema=s');
    expect(describeDatabaseAddress('postgresql://me@localhost')).toBe('localhost:5432/me');
  });
});
