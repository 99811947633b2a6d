/**
 * Runs a real S3-compatible server (versitygw with its posix backend) on 127.0.0.1 for tests and
 * local experiments: a free port, a fresh data folder and generated credentials. The binary is
 * built by infra/bootstrap.sh; nothing is downloaded at run time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { MissingToolError } from './errors';
import { freePort, waitForPort } from './net';

const REPO_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');

export function s3ServerBinary(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [
    env.SOLSTICE_VERSITYGW_BIN,
    path.join(env.SOLSTICE_TOOLS_DIR ?? path.join(REPO_ROOT, '.tools'), 'bin', 'versitygw'),
  ].filter((p): p is string => Boolean(p));
  for (const p of candidates) if (fs.existsSync(p)) return p;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'versitygw');
    if (dir && fs.existsSync(p)) return p;
  }
  throw new MissingToolError(
    `the S3-compatible server versitygw was not found (looked in ${candidates.join(', ')} and PATH)`,
    'Build it once with `npm run bootstrap` (needs Go and the Go module proxy), or set SOLSTICE_VERSITYGW_BIN.',
  );
}

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
  const binary = s3ServerBinary();
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
    const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
    // Credentials go through the environment, not argv, so `ps` does not show them.
    const child: ChildProcess = spawn(
      binary,
      ['--port', `127.0.0.1:${port}`, '--region', REGION, '--quiet', 'posix', '--sidecar', metaDir, dataDir],
      {
        stdio: ['ignore', out, out],
        env: {
          ...process.env,
          ROOT_ACCESS_KEY_ID: credentials.accessKeyId,
          ROOT_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        },
      },
    );
    if (typeof out === 'number') fs.closeSync(out);
    let exited = false;
    child.once('exit', () => (exited = true));
    try {
      await waitForPort('127.0.0.1', port, { timeoutMs: 30_000, isAlive: () => !exited, what: 'versitygw' });
    } catch (err) {
      child.kill('SIGKILL');
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
    const stop = () =>
      new Promise<void>((resolve) => {
        const cleanup = () => {
          if (ownDir) fs.rmSync(base, { recursive: true, force: true });
          resolve();
        };
        if (exited) return cleanup();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          cleanup();
        });
        child.kill('SIGTERM');
      });
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
