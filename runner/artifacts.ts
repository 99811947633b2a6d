/**
 * After the steps (passed or failed), uploads the files the job's `artifacts` globs match, one
 * UploadArtifact call per file, streamed from disk in chunks. Every outcome goes into the job's
 * log: what was uploaded, what matched nothing, and what the log service refused and why (size
 * limits). Globs do not follow symbolic links, and a file whose real path lies outside the
 * checkout is skipped, so a job cannot publish the machine's other files by accident.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
// A require, not an import: the bundler then takes the package's CommonJS build. Its ESM build
// (through fdir) calls createRequire(import.meta.url), which is undefined in a CommonJS bundle.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import tinyglobby = require('tinyglobby');
import { formatSize } from '../platform/units';
import type { ArtifactUploaded__Output, RunnerServiceClient } from '../model/runner-proto';
import { backoffDelay, sleep, type BackoffPolicy } from './backoff';
import { diag } from './diag';
import { describeGrpcError, isServiceError } from './rpc';

export interface ArtifactUploadOptions {
  client: RunnerServiceClient;
  metadata: () => grpc.Metadata;
  jobId: string;
  workdir: string;
  patterns: string[];
  log: (text: string) => void;
  retryForMs: number;
  backoff: BackoffPolicy;
}

const CHUNK_BYTES = 256 * 1024;

/** Relative, `/`-separated paths of the files the patterns match, each once, in a stable order. */
async function matchFiles(o: ArtifactUploadOptions): Promise<string[]> {
  const found = new Set<string>();
  for (const pattern of o.patterns) {
    // A directory pattern ("dist") means every file under it.
    const files = await tinyglobby.glob(pattern, {
      cwd: o.workdir,
      onlyFiles: true,
      dot: true,
      followSymbolicLinks: false,
    });
    if (files.length === 0) o.log(`artifacts: nothing matches "${pattern}"`);
    for (const f of files) found.add(f.split(path.sep).join('/'));
  }
  return [...found].sort();
}

export async function uploadArtifacts(o: ArtifactUploadOptions): Promise<void> {
  if (o.patterns.length === 0) return;
  const root = await realpath(o.workdir);
  const files = await matchFiles(o);
  let uploaded = 0;
  let bytes = 0;
  for (const rel of files) {
    const full = path.join(o.workdir, rel);
    const real = await realpath(full).catch(() => undefined);
    if (!real || (real !== root && !real.startsWith(root + path.sep))) {
      o.log(`artifact ${rel} skipped: it points outside the checkout`);
      continue;
    }
    const st = await stat(real);
    if (!st.isFile()) {
      o.log(`artifact ${rel} skipped: it is not a regular file`);
      continue;
    }
    // A second name of a file elsewhere (a hard link to a host file, on the local provider)
    // would upload what the job was never given: only files with one link are artifacts.
    if (st.nlink > 1) {
      o.log(`artifact ${rel} skipped: it is a hard link (${st.nlink} links); copy the file instead`);
      continue;
    }
    const result = await uploadWithRetry(o, rel, real, st.size);
    if (result.ok) {
      uploaded += 1;
      bytes += st.size;
      o.log(`artifact ${rel} uploaded (${formatSize(st.size)}, sha256 ${result.sha256})`);
    } else {
      o.log(`artifact ${rel} not uploaded: ${result.message}`);
      if (result.fatal) return;
    }
  }
  if (files.length > 0)
    o.log(`artifacts: ${uploaded} of ${files.length} files uploaded (${formatSize(bytes)})`);
}

type UploadResult = { ok: true; sha256: string } | { ok: false; message: string; fatal: boolean };

const RETRYABLE = new Set<number>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

async function uploadWithRetry(
  o: ArtifactUploadOptions,
  rel: string,
  file: string,
  size: number,
): Promise<UploadResult> {
  const startedAt = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      const { res, sha256 } = await uploadOnce(o, rel, file, size);
      if (res.sha256 !== sha256 || res.size !== size) {
        return {
          ok: false,
          fatal: false,
          message: `the log service stored different bytes (sha256 ${res.sha256})`,
        };
      }
      return { ok: true, sha256 };
    } catch (err) {
      if (isServiceError(err) && RETRYABLE.has(err.code)) {
        const delay = backoffDelay(attempt, o.backoff);
        if (Date.now() - startedAt + delay <= o.retryForMs) {
          diag(`UploadArtifact ${rel}: ${describeGrpcError(err)}; retrying in ${delay}ms`);
          await sleep(delay);
          continue;
        }
      }
      const fatal =
        isServiceError(err) &&
        (err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED);
      const message = isServiceError(err) ? err.details || err.message : describeGrpcError(err);
      return { ok: false, fatal, message };
    }
  }
}

function uploadOnce(
  o: ArtifactUploadOptions,
  rel: string,
  file: string,
  size: number,
): Promise<{ res: ArtifactUploaded__Output; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const input = createReadStream(file, { highWaterMark: CHUNK_BYTES });
    let settled = false;
    // At least 1 MiB/s, plus time for the header's checks: a stalled upload does not hang the job.
    const deadline = Date.now() + 60_000 + Math.ceil(size / (1024 * 1024)) * 1000;
    const call = o.client.uploadArtifact(o.metadata(), { deadline }, (err, res) => {
      settled = true;
      input.destroy();
      if (err) reject(err);
      else if (!res) reject(new Error('UploadArtifact: empty response'));
      else resolve({ res, sha256: hash.digest('hex') });
    });
    call.write({ header: { jobId: o.jobId, path: rel, size } });
    input.on('data', (data) => {
      hash.update(data);
      if (!call.write({ data })) {
        input.pause();
        call.once('drain', () => input.resume());
      }
    });
    input.on('end', () => call.end());
    input.on('error', (err) => {
      if (settled) return;
      settled = true;
      call.cancel();
      reject(err);
    });
  });
}
