/**
 * The API's dependencies as a service process opens them: tokens in its database, access with
 * no forge configured (api/ serves tokens and operators; the pages bring the forge's answers),
 * and a Temporal client connected on the first request that needs one.
 */
import type { Client } from '@temporalio/client';
import { NO_FORGE, type AccessSources } from '../access/policy';
import { TokenStore } from '../access/tokens';
import type { Config } from '../platform/config';
import type { Db } from '../storage/db';
import type { ApiOptions } from './server';

export function apiServiceOptions(
  cfg: Config,
  db: Db,
  access: AccessSources = { forge: NO_FORGE, anonymousRead: cfg.anonymousRead },
): Omit<ApiOptions, 'jobs' | 'blobs' | 'log' | 'pollMs'> & { close(): Promise<void> } {
  let connection: Promise<{ client: Client; close(): Promise<void> }> | undefined;
  return {
    cfg,
    tokens: new TokenStore(db),
    access,
    temporal: async () => {
      connection ??= import('../platform/temporal').then(({ connectClient }) => connectClient(cfg));
      try {
        return (await connection).client;
      } catch (err) {
        connection = undefined;
        throw err;
      }
    },
    close: async () => {
      const open = connection;
      connection = undefined;
      await open?.then((c) => c.close()).catch(() => undefined);
    },
  };
}
