/**
 * A real Temporal cluster on PostgreSQL, as docs/deploy.md runs it, for tests and benches:
 * its own two databases (created here, schema by temporal-sql-tool, dropped by `stop`), a
 * config rendered from infra/deploy/temporal/temporal.yaml with this run's ports and addresses,
 * and `temporal-server --config-file <file> --allow-no-auth start --service <name>` processes
 * (the command line of infra/deploy/systemd/temporal@.service): either one process with every
 * service, or frontend, history ×N, matching and worker apart. The binaries are built by
 * `infra/bootstrap.sh temporal-server temporal-sql-tool`; nothing is downloaded here.
 *
 * The namespace and search attributes are not made here: a fresh cluster has none, and
 * registering them is `solstice temporal setup`'s job (callers run it, as an operator would).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client as PgClient } from 'pg';
import YAML from 'yaml';
import { freePort, joinHostPort } from '../platform/net';
import { runStatement } from '../storage/db-connection';
import { findTool, logTail, startToolProcess, type ToolProcess, type ToolSpec } from './tool-process';

export const TEMPORAL_SERVER: ToolSpec = {
  binary: 'temporal-server',
  title: 'temporal-server (the Temporal cluster binary)',
  envVar: 'SOLSTICE_TEMPORAL_SERVER_BIN',
};

export const TEMPORAL_SQL_TOOL: ToolSpec = {
  binary: 'temporal-sql-tool',
  title: "temporal-sql-tool (Temporal's schema tool)",
  envVar: 'SOLSTICE_TEMPORAL_SQL_TOOL_BIN',
};

/** `single`: one process with all four services; `split`: one process per service, history ×N. */
export type ClusterLayout = 'single' | 'split';

const SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
type Service = (typeof SERVICES)[number];

export interface TemporalClusterOptions {
  layout: ClusterLayout;
  /** An admin URL of the PostgreSQL the cluster stores into (creates and drops databases). */
  pgUrl: string;
  /** Prefix of the two database names (`<prefix>` and `<prefix>_visibility`); unique per cluster. */
  databasePrefix: string;
  /** Config files and one log file per process go here (created). */
  stateDir: string;
  /**
   * The address every process binds to and announces to the others (membership and the
   * frontend's address): 127.0.0.1, or an address of a network namespace's interface.
   */
  host?: string;
  /** How the Temporal processes reach PostgreSQL (host:port); default the host and port of pgUrl. */
  pgAddress?: string;
  /** History nodes in the split layout (default 2: one may be lost). */
  historyNodes?: number;
  /** Fixed before the first start for the cluster's life; small keeps a test's start fast. */
  numHistoryShards?: number;
  /**
   * Connections per process to each database (default 6 and 2: five processes of a split
   * cluster then hold at most 40, where the deploy file's 20 + 10 each would exhaust a
   * PostgreSQL's default max_connections of 100 shared with the tests).
   */
  maxConns?: { main: number; visibility: number };
  /** Prepended to each process's command line, e.g. ['ip', 'netns', 'exec', 'services']. */
  wrap?: string[];
}

export interface ClusterProcess {
  /** `all`, `frontend`, `history-1`, `history-2`, `matching`, `worker`. */
  name: string;
  service: Service | 'all';
  logFile: string;
  proc: ToolProcess;
}

export interface TemporalCluster {
  /** The frontend, host:port: what TEMPORAL_ADDRESS is set to. */
  address: string;
  layout: ClusterLayout;
  databases: string[];
  processes: ClusterProcess[];
  /** Stops every process (SIGTERM, then SIGKILL) and drops the databases. */
  stop(): Promise<void>;
}

/** A cluster process or the schema tool failed; the message names its log. */
export class TemporalClusterError extends Error {}

const ROOT_CANDIDATES = [path.resolve(__dirname, '..'), path.resolve(__dirname, '../..')];

/** The deploy template (infra/deploy/temporal/), from the sources or from dist/. */
function deployFile(name: string): string {
  for (const root of ROOT_CANDIDATES) {
    const p = path.join(root, 'infra/deploy/temporal', name);
    if (fs.existsSync(p)) return p;
  }
  throw new TemporalClusterError(`infra/deploy/temporal/${name} not found next to ${__dirname}`);
}

interface Ports {
  grpcPort: number;
  membershipPort: number;
  httpPort?: number;
}

/**
 * infra/deploy/temporal/temporal.yaml with this cluster's databases, addresses and ports. The
 * deploy file's env lookups are replaced by values, so the result needs no templating.
 */
export function renderClusterConfig(opts: {
  host: string;
  pgAddress: string;
  pgUser: string;
  pgPassword: string;
  databases: { main: string; visibility: string };
  numHistoryShards: number;
  ports: Record<Service, Ports>;
  dynamicConfigFile: string;
  /** Connections per process to each database (main, visibility). */
  maxConns: { main: number; visibility: number };
}): string {
  const cfg = YAML.parse(fs.readFileSync(deployFile('temporal.yaml'), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- Temporal's config schema is Temporal's; we set a few known keys
  cfg.log = { stdout: true, level: 'warn' };
  cfg.persistence.numHistoryShards = opts.numHistoryShards;
  const stores = cfg.persistence.datastores as Record<string, { sql: Record<string, unknown> }>;
  stores['postgres-default'].sql.databaseName = opts.databases.main;
  stores['postgres-visibility'].sql.databaseName = opts.databases.visibility;
  for (const [name, store] of Object.entries(stores)) {
    const max = name === 'postgres-visibility' ? opts.maxConns.visibility : opts.maxConns.main;
    store.sql.maxConns = max;
    store.sql.maxIdleConns = max;
    store.sql.connectAddr = opts.pgAddress;
    store.sql.user = opts.pgUser;
    store.sql.password = opts.pgPassword;
  }
  cfg.global.membership.broadcastAddress = opts.host;
  // Fixed metrics ports would collide between processes and runs; tests read no metrics.
  delete cfg.global.metrics;
  for (const svc of SERVICES) {
    cfg.services[svc] = { rpc: { ...opts.ports[svc], bindOnIP: opts.host } };
  }
  cfg.clusterMetadata.clusterInformation.active.rpcAddress = joinHostPort(
    opts.host,
    opts.ports.frontend.grpcPort,
  );
  cfg.dynamicConfigClient = { filepath: opts.dynamicConfigFile, pollInterval: '10s' };
  return YAML.stringify(cfg);
}

/**
 * The deploy dynamic config plus what makes a fresh cluster usable at once: search attributes
 * registered by `solstice temporal setup` are seen on the next request, not the next cache
 * refresh (the dev server sets the same).
 */
function renderDynamicConfig(): string {
  const dc = (YAML.parse(fs.readFileSync(deployFile('dynamicconfig.yaml'), 'utf8')) ?? {}) as Record<
    string,
    unknown
  >;
  dc['system.forceSearchAttributesCacheRefreshOnRead'] = [{ value: true }];
  // A host that loses its network leaves its pollers' connections open, and the tasks matched
  // to them wait out their timeouts: the frontend's keepalive ends them (default 1 min + 10 s).
  dc['frontend.keepAliveTime'] = [{ value: '5s' }];
  dc['frontend.keepAliveTimeout'] = [{ value: '3s' }];
  return YAML.stringify(dc);
}

/** `n` distinct free ports on `host`, all below 32768 as Temporal needs (see freePort). */
async function freePorts(host: string, n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) ports.push(await freePort(host));
  return ports;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Until `first` has written the cluster's metadata and system namespace; fails if it exits first. */
async function waitForClusterMetadata(
  adminUrl: string,
  database: string,
  first: ClusterProcess,
): Promise<void> {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const c = new PgClient({ connectionString: url.toString() });
  await c.connect();
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const { rows } = await c.query(
        `SELECT (SELECT count(*) FROM cluster_metadata_info) > 0
            AND (SELECT count(*) FROM namespaces WHERE name = 'temporal-system') > 0 AS ready`,
      );
      if (rows[0]?.ready) return;
      if (first.proc.exited || Date.now() > deadline) {
        const why = first.proc.exited ? 'exited' : 'did not write it within 90 s';
        const tail = logTail(first.logFile, 20);
        throw new TemporalClusterError(
          `Temporal ${first.name} ${why} before writing the cluster metadata and system namespace (its log: ${first.logFile})${tail ? `:\n${tail}` : ''}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await c.end();
  }
}

/** create-database is done by us (one statement); the schema is the sql tool's, as in deploy. */
async function setupSchema(sqlTool: string, pg: URL, database: string, schema: string, log: string) {
  const args = [
    '--ep',
    pg.hostname,
    '-p',
    pg.port || '5432',
    '-u',
    decodeURIComponent(pg.username || 'postgres'),
    '--pl',
    'postgres12',
    '--db',
    database,
  ];
  const env = { ...process.env, SQL_PASSWORD: decodeURIComponent(pg.password) };
  for (const cmd of [
    ['setup-schema', '-v', '0.0'],
    ['update-schema', '--schema-name', `postgresql/v12/${schema}`],
  ]) {
    try {
      const r = await promisify(execFile)(sqlTool, [...args, ...cmd], { env, timeout: 120_000 });
      fs.appendFileSync(log, r.stdout + r.stderr);
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      fs.appendFileSync(log, `${e.stdout ?? ''}${e.stderr ?? ''}`);
      throw new TemporalClusterError(
        `temporal-sql-tool ${cmd[0]} on ${database} failed: ${e.message} (its output: ${log})`,
      );
    }
  }
}

export async function startTemporalCluster(opts: TemporalClusterOptions): Promise<TemporalCluster> {
  const server = findTool(TEMPORAL_SERVER);
  const sqlTool = findTool(TEMPORAL_SQL_TOOL);
  const host = opts.host ?? '127.0.0.1';
  const pg = new URL(opts.pgUrl);
  const databases = { main: opts.databasePrefix, visibility: `${opts.databasePrefix}_visibility` };
  fs.mkdirSync(opts.stateDir, { recursive: true });
  const schemaLog = path.join(opts.stateDir, 'schema.log');

  const processes: ClusterProcess[] = [];
  const dropDatabases = async () => {
    for (const db of Object.values(databases))
      await runStatement(opts.pgUrl, `DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`);
  };
  const stop = async () => {
    await Promise.all(processes.map((p) => p.proc.stop(15_000)));
    await dropDatabases();
  };

  try {
    for (const db of Object.values(databases))
      await runStatement(opts.pgUrl, `CREATE DATABASE ${quoteIdent(db)}`);
    await setupSchema(sqlTool, pg, databases.main, 'temporal', schemaLog);
    await setupSchema(sqlTool, pg, databases.visibility, 'visibility', schemaLog);

    const dynamicConfigFile = path.join(opts.stateDir, 'dynamicconfig.yaml');
    fs.writeFileSync(dynamicConfigFile, renderDynamicConfig());
    const historyNodes = opts.layout === 'split' ? (opts.historyNodes ?? 2) : 1;
    const [fe, feMember, feHttp, mGrpc, mMember, wGrpc, wMember, ...historyPorts] = await freePorts(
      host,
      7 + 2 * historyNodes,
    );
    const base: Record<Service, Ports> = {
      frontend: { grpcPort: fe, membershipPort: feMember, httpPort: feHttp },
      matching: { grpcPort: mGrpc, membershipPort: mMember },
      worker: { grpcPort: wGrpc, membershipPort: wMember },
      history: { grpcPort: historyPorts[0], membershipPort: historyPorts[1] },
    };
    const render = (ports: Record<Service, Ports>) =>
      renderClusterConfig({
        host,
        pgAddress: opts.pgAddress ?? joinHostPort(pg.hostname, pg.port || '5432'),
        pgUser: decodeURIComponent(pg.username || 'postgres'),
        pgPassword: decodeURIComponent(pg.password),
        databases,
        numHistoryShards: opts.numHistoryShards ?? 8,
        ports,
        dynamicConfigFile,
        maxConns: opts.maxConns ?? { main: 6, visibility: 2 },
      });

    // One process per entry: its name, the services it runs, and its config (history nodes on
    // one address differ only in their ports, so each gets its own file).
    const plan: { name: string; service: Service | 'all'; ports: Record<Service, Ports> }[] =
      opts.layout === 'single'
        ? [{ name: 'all', service: 'all', ports: base }]
        : [
            { name: 'frontend', service: 'frontend', ports: base },
            ...Array.from({ length: historyNodes }, (_, i) => ({
              name: `history-${i + 1}`,
              service: 'history' as const,
              ports: {
                ...base,
                history: { grpcPort: historyPorts[2 * i], membershipPort: historyPorts[2 * i + 1] },
              },
            })),
            { name: 'matching', service: 'matching', ports: base },
            { name: 'worker', service: 'worker', ports: base },
          ];

    const start = (p: (typeof plan)[number]) => {
      const configFile = path.join(opts.stateDir, `${p.name}.yaml`);
      fs.writeFileSync(configFile, render(p.ports));
      const services = p.service === 'all' ? SERVICES : [p.service];
      const args = [
        '--config-file',
        configFile,
        '--allow-no-auth',
        'start',
        ...services.flatMap((s) => ['--service', s]),
      ];
      const [bin, ...argv] = [...(opts.wrap ?? []), server, ...args];
      const logFile = path.join(opts.stateDir, `${p.name}.log`);
      const started: ClusterProcess = {
        name: p.name,
        service: p.service,
        logFile,
        proc: startToolProcess(bin, argv, { logFile }),
      };
      processes.push(started);
      return started;
    };
    // Every Temporal process, at start, writes the cluster's metadata row and the system
    // namespace if there are none, and one that loses that race to another exits ("failed to
    // initialize current cluster metadata"): stop 24's CI lost its frontend so. So the first
    // process starts alone, and the others once both are there.
    // (Deployed, systemd's Restart=on-failure covers the same race; docs/deploy.md.)
    const [first, ...rest] = plan;
    const firstProcess = start(first);
    await waitForClusterMetadata(opts.pgUrl, databases.main, firstProcess);
    rest.forEach(start);
    // The frontend answers once it has joined the ring; history and matching may join later,
    // which callers notice as their first requests being retried (see waitUntilServing).
    for (const p of processes) {
      const ports = p.service === 'all' || p.service === 'frontend' ? [fe] : [];
      try {
        await p.proc.waitForPorts(host, ports, { timeoutMs: 90_000, what: `Temporal ${p.name}` });
      } catch (err) {
        throw new TemporalClusterError(`${(err as Error).message} (its log: ${p.logFile})`, { cause: err });
      }
    }
    // A process without a port to wait for has had as long as the frontend to die at start.
    const dead = processes.find((p) => p.proc.exited);
    if (dead) {
      const tail = logTail(dead.logFile, 20);
      throw new TemporalClusterError(
        `Temporal ${dead.name} exited at start (its log: ${dead.logFile})${tail ? `:\n${tail}` : ''}`,
      );
    }
    return {
      address: joinHostPort(host, fe),
      layout: opts.layout,
      databases: Object.values(databases),
      processes,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
