/**
 * Runs a real S3-compatible server (versitygw with its posix backend) on 127.0.0.1 for tests and
 * local experiments: a free port, a fresh data folder and generated credentials. The binary is
 * built by infra/bootstrap.sh; nothing is downloaded at run time.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../platform/net';
import { findTool, startToolProcess, type ToolSpec } from './tool-process';

export const VERSITYGW: ToolSpec = {
  binary: 'versitygw',
  title: 'the S3-compatible server versitygw',
  envVar: 'SOLSTICE_VERSITYGW_BIN',
};

export interface S3DevServer {
  /** e.g. http://127.0.0.1:40123 */
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Objects live in <dataDir>/<bucket>/<key>. */
  dataDir: string;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export interface S3DevServerOptions {
  /** Data folder; default: a new temp folder, removed by stop(). */
  dataDir?: string;
  port?: number;
  logFile?: string;
  /** Buckets to create once the server listens. */
  buckets?: string[];
}

const REGION = 'us-east-1';

export async function startS3DevServer(opts: S3DevServerOptions = {}): Promise<S3DevServer> {
  const binary = findTool(VERSITYGW);
  const ownDir = opts.dataDir === undefined;
  const base = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-s3-'));
  const dataDir = path.join(base, 'data');
  const metaDir = path.join(base, 'meta');
  fs.mkdirSync(dataDir, { recursive: true });
  // Metadata in a sidecar folder instead of extended attributes, so any filesystem works.
  fs.mkdirSync(metaDir, { recursive: true });
  const credentials = {
    accessKeyId: `solstice${randomBytes(6).toString('hex')}`,
    secretAccessKey: randomBytes(24).toString('base64url'),
  };

  // A free port can be taken between asking and listening; try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port ?? (await freePort());
    // Credentials go through the environment, not argv, so `ps` does not show them.
    const server = startToolProcess(
      binary,
      ['--port', `127.0.0.1:${port}`, '--region', REGION, '--quiet', 'posix', '--sidecar', metaDir, dataDir],
      {
        logFile: opts.logFile,
        env: {
          ...process.env,
          ROOT_ACCESS_KEY_ID: credentials.accessKeyId,
          ROOT_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        },
      },
    );
    try {
      await server.waitForPorts('127.0.0.1', [port], { timeoutMs: 30_000, what: 'versitygw' });
    } catch (err) {
      server.child.kill('SIGKILL');
      lastError = err;
      if (opts.port !== undefined) break;
      continue;
    }
    const endpoint = `http://127.0.0.1:${port}`;
    const createBucket = async (name: string): Promise<void> => {
      const client = new S3Client({ endpoint, region: REGION, forcePathStyle: true, credentials });
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        client.destroy();
      }
    };
    const stop = async () => {
      await server.stop();
      if (ownDir) fs.rmSync(base, { recursive: true, force: true });
    };
    try {
      for (const bucket of opts.buckets ?? []) await createBucket(bucket);
    } catch (err) {
      await stop();
      throw err;
    }
    return { endpoint, region: REGION, credentials, dataDir, createBucket, stop };
  }
  if (ownDir) fs.rmSync(base, { recursive: true, force: true });
  const where = opts.logFile ? ` (its log: ${opts.logFile})` : '';
  throw new Error(`${(lastError as Error).message}${where}`, { cause: lastError });
}
