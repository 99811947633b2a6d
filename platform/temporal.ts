/** The one place that connects to Temporal, so every process reports an unreachable server the same way. */
import { Client, Connection } from '@temporalio/client';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  type LogLevel,
  type LogMetadata,
} from '@temporalio/worker';
import type { Logger } from './logger';
import type { Config } from './config';
import { DependencyUnavailableError } from './errors';
import { temporalClientInterceptors } from './telemetry';

type TemporalConfig = Pick<Config, 'temporalAddress' | 'temporalNamespace'>;

const START_HINT =
  'Start everything locally with `solstice up` (Temporal dev server + Web UI), or run ' +
  '`.tools/bin/temporal server start-dev`, or set TEMPORAL_ADDRESS to your Temporal frontend.';

function unavailable(cfg: TemporalConfig, cause: unknown): DependencyUnavailableError {
  return new DependencyUnavailableError('Temporal', cfg.temporalAddress, START_HINT, { cause });
}

export async function connectClient(
  cfg: TemporalConfig,
): Promise<{ client: Client; close(): Promise<void> }> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: cfg.temporalAddress, connectTimeout: '5s' });
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

export async function connectWorker(cfg: TemporalConfig): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address: cfg.temporalAddress });
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
