/**
 * A warm-pool machine's runner before it has a job: it holds only the pool file (machine id,
 * pool token, contact address), makes an X25519 key pair, and calls WaitForAssignment until a
 * job is delivered, sealed to that key. It then writes the job file (0600) where a cold
 * machine's seed would have put it and hands over to the ordinary job run, so a warm job and a
 * cold one run the very same code from StartJob on.
 *
 * Until then it has no job, no job token and no secrets, and its pool token opens nothing but
 * this one call.
 */
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import {
  bearerMetadata,
  createRunnerServiceClient,
  type RunnerServiceClient,
  type WaitForAssignmentResponse__Output,
} from '../model/runner-proto';
import { newSealKeyPair, open } from '../model/sealed-box';
import { ConfigError } from '../platform/errors';
import { backoffDelay, DEFAULT_BACKOFF, sleep } from './backoff';
import { diag } from './diag';
import { describeGrpcError, isServiceError, runnerCredentials } from './rpc';
import { JobTokenRejectedError, LogServiceUnavailableError } from './errors';

/** Names the pool file (set by a pool machine's bootstrap, provisioning/cloud-init.ts). */
export const POOL_FILE_ENV = 'SOLSTICE_POOL_FILE';

/** How long one call may wait on the server for a job; each call is also the idle machine's sign of life. */
export const POOL_WAIT_MS = 5_000;

interface PoolFile {
  machineId: string;
  poolToken: string;
  contactAddr: string;
  tlsCa?: string;
}

function readPoolFile(file: string): PoolFile {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'), { schema: 'failsafe' });
  } catch (err) {
    throw new ConfigError(`cannot read pool file ${file}: ${(err as Error).message}`);
  }
  const d = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof d[k] === 'string' ? d[k] : undefined);
  const machineId = str('machine_id');
  const poolToken = str('pool_token');
  const contactAddr = str('contact_addr');
  if (!machineId || !poolToken || !contactAddr)
    throw new ConfigError(`pool file ${file} needs machine_id, pool_token and contact_addr`);
  return { machineId, poolToken, contactAddr, tlsCa: str('tls_ca') };
}

function waitOnce(
  client: RunnerServiceClient,
  pool: PoolFile,
  publicKey: string,
): Promise<WaitForAssignmentResponse__Output> {
  return new Promise((resolve, reject) => {
    client.waitForAssignment(
      { machineId: pool.machineId, publicKey, waitMs: POOL_WAIT_MS },
      bearerMetadata(pool.poolToken),
      { deadline: Date.now() + POOL_WAIT_MS + 15_000 },
      (err, res) => (err ? reject(err) : res ? resolve(res) : reject(new Error('empty answer'))),
    );
  });
}

/**
 * Waits for this pool machine's job and writes its job file to `jobFile`. Gives up (the machine
 * is then replaced by its pool) when the log service refuses the pool token, or stays
 * unreachable for `retryForMs`.
 */
export async function waitForAssignment(
  poolFile: string,
  jobFile: string,
  retryForMs: number,
): Promise<void> {
  const pool = readPoolFile(poolFile);
  const keys = newSealKeyPair();
  const client = createRunnerServiceClient(pool.contactAddr, runnerCredentials(pool));
  diag(`pool machine ${pool.machineId}: waiting for a job at ${pool.contactAddr}`);
  let failingSince: number | undefined;
  try {
    for (let attempt = 0; ;) {
      let res: WaitForAssignmentResponse__Output;
      try {
        res = await waitOnce(client, pool, keys.publicKey);
        failingSince = undefined;
        attempt = 0;
      } catch (err) {
        if (
          isServiceError(err) &&
          (err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED)
        )
          throw new JobTokenRejectedError(
            `the log service refused the pool token of ${pool.machineId} (${describeGrpcError(err)})`,
            'the machine was recycled or destroyed by its pool; it is not reused',
            { cause: err },
          );
        failingSince ??= Date.now();
        if (Date.now() - failingSince > retryForMs)
          throw new LogServiceUnavailableError(
            `gave up waiting for a job: the log service at ${pool.contactAddr} failed for ${Math.round((Date.now() - failingSince) / 1000)}s (${describeGrpcError(err)})`,
            'check that the orchestrator is running and that ORCH_CONTACT_ADDR is reachable from this machine',
            { cause: err },
          );
        const delay = backoffDelay(attempt++, DEFAULT_BACKOFF);
        diag(`WaitForAssignment failed (${describeGrpcError(err)}); retrying in ${delay}ms`);
        await sleep(delay);
        continue;
      }
      if (!res.sealedJobFile) continue;
      await writeFile(jobFile, open(keys.privateKey, res.sealedJobFile), { mode: 0o600 });
      // The pool token is revoked with the delivery; the file goes too, so no job sees it.
      await rm(poolFile, { force: true });
      diag(`pool machine ${pool.machineId}: job delivered`);
      return;
    }
  } finally {
    client.close();
  }
}
