/** Opening the things commands need, with the same errors everywhere. */
import { effectiveDatabaseUrl, type Config } from '../platform/config';
import { checkDatabase, createDb, type Db } from '../storage/db';
import { JobStore } from '../storage/job-store';
import type { BlobStore } from '../storage/blob-store';
import { createBlobStore } from '../storage/create-blob-store';
import { readInstallationId } from '../storage/installation';
import type { Topology } from '../ingress/amqp';

export interface Store {
  db: Db;
  jobs: JobStore;
  /** Finished jobs' logs and artifacts; opened without I/O, so commands that never read it pay nothing. */
  blobs: BlobStore;
  close(): Promise<void>;
}

export async function openStore(cfg: Config): Promise<Store> {
  await checkDatabase(effectiveDatabaseUrl(cfg), { embedded: cfg.databaseUrl === undefined });
  const db = createDb(cfg);
  const blobs = createBlobStore(cfg);
  return {
    db,
    blobs,
    jobs: new JobStore(db, blobs),
    close: async () => {
      await blobs.close();
      await db.$disconnect();
    },
  };
}

/** Runs `use` with the store open and closes the store after, whatever happens. */
export async function withStore<T>(cfg: Config, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(cfg);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

/** This installation's id, from its database. */
export function installationIdOf(cfg: Config): Promise<string> {
  return withStore(cfg, (store) => readInstallationId(store.db));
}

/**
 * This installation's exchanges and queues: SOLSTICE_AMQP_PREFIX, else named after its id.
 * The AMQP module (and the OpenTelemetry SDK it traces with) loads here, not with the store:
 * `jobs`, `status` and `logs` open the store and never talk to the broker.
 */
export async function brokerTopology(cfg: Config): Promise<Topology> {
  const { installationTopology } = await import('../ingress/amqp');
  return installationTopology(cfg, () => installationIdOf(cfg));
}
