/**
 * The one place that connects to Temporal, so every process reports an unreachable server the
 * same way and every client and worker speaks TLS with the same settings.
 */
import fs from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { LogLevel, LogMetadata, NativeConnection } from '@temporalio/worker';
import type { Logger } from './logger';
import { SETTINGS, type Config } from './config';
import { ConfigError, DependencyUnavailableError, TlsSettingError } from './errors';
import { temporalClientInterceptors } from './telemetry';

type TlsKey =
  | 'temporalTls'
  | 'temporalTlsCaPath'
  | 'temporalTlsCertPath'
  | 'temporalTlsKeyPath'
  | 'temporalTlsServerName';
/** Where and how to reach Temporal; the TLS settings are optional so tests can name just an address. */
export type TemporalConfig = Pick<Config, 'temporalAddress' | 'temporalNamespace'> &
  Partial<Pick<Config, TlsKey>>;

function readPem(
  key: 'temporalTlsCaPath' | 'temporalTlsCertPath' | 'temporalTlsKeyPath',
  file: string,
): Buffer {
  const env = SETTINGS[key].env;
  let pem: Buffer;
  try {
    pem = fs.readFileSync(file);
  } catch (err) {
    throw new TlsSettingError(
      env,
      file,
      `${env} names ${file}, which cannot be read: ${(err as Error).message}`,
      `point ${env} (or ${SETTINGS[key].flag}) at a readable PEM file, or unset it`,
      { cause: err },
    );
  }
  if (!pem.includes('-----BEGIN '))
    throw new TlsSettingError(
      env,
      file,
      `${env} names ${file}, which is not PEM (no -----BEGIN line)`,
      `give ${env} a PEM file; convert DER with \`openssl x509 -inform der -in <file> -out <file>.pem\``,
    );
  return pem;
}

/**
 * The SDK's TLS options from the settings: undefined (plaintext) unless TEMPORAL_TLS is on or
 * any TEMPORAL_TLS_* is set. Files are read here, once, so a wrong path fails the process at
 * start with the setting's name instead of as a handshake error on every call.
 */
export function temporalTlsOptions(cfg: Partial<Pick<Config, TlsKey>>): TLSConfig | undefined {
  const { temporalTlsCaPath: ca, temporalTlsCertPath: cert, temporalTlsKeyPath: key } = cfg;
  const serverName = cfg.temporalTlsServerName;
  const on = cfg.temporalTls === true || [ca, cert, key, serverName].some((v) => v !== undefined);
  if (!on) return undefined;
  if ((cert === undefined) !== (key === undefined)) {
    const [have, lack] =
      cert === undefined
        ? ['temporalTlsKeyPath', 'temporalTlsCertPath']
        : ['temporalTlsCertPath', 'temporalTlsKeyPath'];
    const lackEnv = SETTINGS[lack as 'temporalTlsKeyPath'].env;
    throw new TlsSettingError(
      lackEnv,
      undefined,
      `${SETTINGS[have as 'temporalTlsKeyPath'].env} is set but ${lackEnv} is not: a client certificate needs its key`,
      `set both ${SETTINGS.temporalTlsCertPath.env} and ${SETTINGS.temporalTlsKeyPath.env} for mTLS, or neither`,
    );
  }
  const tls: TLSConfig = {};
  if (ca !== undefined) tls.serverRootCACertificate = readPem('temporalTlsCaPath', ca);
  if (cert !== undefined && key !== undefined)
    tls.clientCertPair = {
      crt: readPem('temporalTlsCertPath', cert),
      key: readPem('temporalTlsKeyPath', key),
    };
  if (serverName !== undefined) tls.serverNameOverride = serverName;
  return tls;
}

/** Worker tuning from the settings, checked against each other (the SDK would only warn and change them). */
export function workerTuning(
  cfg: Pick<
    Config,
    | 'temporalMaxConcurrentActivities'
    | 'temporalMaxConcurrentWorkflowTasks'
    | 'temporalStickyCacheSize'
    | 'dbPoolMaxSize'
  >,
): {
  maxConcurrentActivityTaskExecutions: number;
  maxConcurrentLocalActivityExecutions: number;
  maxConcurrentWorkflowTaskExecutions: number;
  maxCachedWorkflows: number;
} {
  const cache = cfg.temporalStickyCacheSize;
  const wft = cfg.temporalMaxConcurrentWorkflowTasks;
  const cacheEnv = SETTINGS.temporalStickyCacheSize.env;
  const wftEnv = SETTINGS.temporalMaxConcurrentWorkflowTasks.env;
  if (cache === 1)
    throw new ConfigError(
      `${cacheEnv} is 1; the sticky cache holds 0 (off) or at least 2 runs`,
      `set ${cacheEnv} to 0 or ≥ 2`,
    );
  if (cache > 0 && wft < 2)
    throw new ConfigError(
      `${wftEnv} is ${wft}; with a sticky cache a worker processes at least 2 workflow tasks at once`,
      `set ${wftEnv} to 2 or more, or ${cacheEnv}=0`,
    );
  if (cache > 0 && wft > cache)
    throw new ConfigError(
      `${wftEnv} (${wft}) exceeds ${cacheEnv} (${cache}): every workflow task in progress needs a cached run`,
      `raise ${cacheEnv} or lower ${wftEnv}`,
    );
  return {
    maxConcurrentActivityTaskExecutions: cfg.temporalMaxConcurrentActivities,
    // The jobs' local activities (record, lease, release) each take a connection of this
    // process's pool, and the lease ones wait there for the scheduler's lock. A burst of jobs
    // starts them all at once (the SDK's default allows 100), which emptied the pool for
    // everything else in the process; half the pool keeps the rest served.
    maxConcurrentLocalActivityExecutions: Math.max(1, Math.floor(cfg.dbPoolMaxSize / 2)),
    maxConcurrentWorkflowTaskExecutions: wft,
    maxCachedWorkflows: cache,
  };
}

const START_HINT_PLAIN =
  'Start everything locally with `solstice up` (Temporal dev server + Web UI), or run ' +
  '`.tools/bin/temporal server start-dev`, or set TEMPORAL_ADDRESS to your Temporal frontend ' +
  '(one that serves TLS also needs TEMPORAL_TLS=true, or TEMPORAL_TLS_CA_PATH for a private CA).';

function unavailable(cfg: TemporalConfig, cause: unknown): DependencyUnavailableError {
  const hint = temporalTlsOptions(cfg)
    ? `check that ${cfg.temporalAddress} serves TLS, that ${SETTINGS.temporalTlsCaPath.env} is the CA that signed its ` +
      `certificate, that the certificate names the host (or set ${SETTINGS.temporalTlsServerName.env}), and that the ` +
      `server accepts the client certificate (${SETTINGS.temporalTlsCertPath.env})`
    : START_HINT_PLAIN;
  return new DependencyUnavailableError('Temporal', cfg.temporalAddress, hint, { cause });
}

export async function connectClient(
  cfg: TemporalConfig,
): Promise<{ client: Client; close(): Promise<void> }> {
  const tls = temporalTlsOptions(cfg);
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: cfg.temporalAddress, connectTimeout: '5s', tls });
  } catch (err) {
    throw unavailable(cfg, err);
  }
  const client = new Client({
    connection,
    namespace: cfg.temporalNamespace,
    interceptors: temporalClientInterceptors(),
  });
  return { client, close: () => connection.close() };
}

/**
 * The worker SDK (its native core, webpack, memfs, rxjs: about 20 MiB of a process at start) is
 * loaded by the two functions below only, so processes that are Temporal clients alone (the log
 * service, the CLI) never load it.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- deferred on purpose (above)
const workerSdk = () => require('@temporalio/worker') as typeof import('@temporalio/worker');

export async function connectWorker(cfg: TemporalConfig): Promise<NativeConnection> {
  const tls = temporalTlsOptions(cfg);
  const { NativeConnection } = workerSdk();
  try {
    return await NativeConnection.connect({ address: cfg.temporalAddress, tls });
  } catch (err) {
    throw unavailable(cfg, err);
  }
}

let runtimeInstalled = false;

/**
 * Routes the Temporal SDK's own logs into our logger (at its level) instead of its default
 * console logger. Must run before the first worker connection; later calls are no-ops.
 */
export function installTemporalRuntime(log: Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const { DefaultLogger, Runtime } = workerSdk();
  const forward: Record<LogLevel, (meta: LogMetadata | undefined, msg: string) => void> = {
    TRACE: (m, s) => log.trace(m ?? {}, s),
    DEBUG: (m, s) => log.debug(m ?? {}, s),
    INFO: (m, s) => log.info(m ?? {}, s),
    WARN: (m, s) => log.warn(m ?? {}, s),
    ERROR: (m, s) => log.error(m ?? {}, s),
  };
  Runtime.install({
    // platform/shutdown.ts owns SIGTERM/SIGINT: the SDK's own handlers would stop the worker
    // behind the drain's back, before the other components.
    shutdownSignals: [],
    logger: new DefaultLogger('TRACE', (entry) => {
      // Task tokens are credentials for completing activities; keep them out of logs.
      const { taskToken: _token, ...meta } = (entry.meta ?? {}) as LogMetadata & { taskToken?: unknown };
      // The host-queue worker runs activities only, by design; the SDK warns about that.
      const level = entry.message.startsWith('No workflows registered') ? 'DEBUG' : entry.level;
      forward[level](meta, entry.message);
    }),
  });
}

/**
 * How many workers polled `taskQueue` for workflow tasks lately (the server remembers a poller
 * for a few minutes). Zero means whatever is started there waits until a worker comes.
 */
export async function workflowPollers(client: Client, namespace: string, taskQueue: string): Promise<number> {
  const r = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    // TASK_QUEUE_TYPE_WORKFLOW: a pipeline needs a workflow task before anything else happens.
    taskQueueType: 1,
  });
  return r.pollers?.length ?? 0;
}
