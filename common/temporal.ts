/** The one place that connects to Temporal, so every process reports an unreachable server the same way. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from './config';
import { DependencyUnavailableError } from './errors';

type TemporalConfig = Pick<Config, 'temporalAddress' | 'temporalNamespace'>;

const START_HINT =
  'Start everything locally with `solstice up` (Temporal dev server + Web UI), or run ' +
  '`.tools/bin/temporal server start-dev`, or set TEMPORAL_ADDRESS to your Temporal frontend.';

function unavailable(cfg: TemporalConfig, cause: unknown): DependencyUnavailableError {
  return new DependencyUnavailableError('Temporal', cfg.temporalAddress, START_HINT, { cause });
}

export async function connectClient(cfg: TemporalConfig): Promise<{ client: Client; close(): Promise<void> }> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: cfg.temporalAddress, connectTimeout: '5s' });
  } catch (err) {
    throw unavailable(cfg, err);
  }
  const client = new Client({ connection, namespace: cfg.temporalNamespace });
  return { client, close: () => connection.close() };
}

export async function connectWorker(cfg: TemporalConfig): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address: cfg.temporalAddress });
  } catch (err) {
    throw unavailable(cfg, err);
  }
}
