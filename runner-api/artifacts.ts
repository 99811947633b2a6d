/**
 * UploadArtifact: one file per call, streamed into the blob store as it arrives (never whole in
 * memory) while its SHA-256 is computed. The header is checked before any byte is stored: the
 * job token, a path that stays inside the job's artifacts folder, and the per-file and per-job
 * size limits. A file whose bytes do not add up to the announced size is not kept.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { artifactBlobKey, validateArtifactPath, type ArtifactStore } from '../storage/artifact-store';
import type { BlobStore } from '../storage/blob-store';
import { formatSize, type Config } from '../platform/config';
import { InputError } from '../platform/errors';
import type { Logger } from '../platform/logger';
import type { ArtifactChunk__Output, ArtifactUploaded } from '../model/runner-proto';
import { authenticate, type TokenCache } from './auth';

export interface ArtifactLimits {
  maxFileBytes: number;
  maxJobBytes: number;
}

export function artifactLimits(
  cfg: Pick<Config, 'artifactMaxFileBytes' | 'artifactMaxJobBytes'>,
): ArtifactLimits {
  return { maxFileBytes: cfg.artifactMaxFileBytes, maxJobBytes: cfg.artifactMaxJobBytes };
}

export interface ArtifactServiceDeps {
  tokens: TokenCache;
  artifacts: ArtifactStore;
  blobs: BlobStore;
  limits: ArtifactLimits;
  log: Logger;
}

/** A refusal with the gRPC status it ends the call with; its message goes into the job's log. */
export class ArtifactRefusedError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

interface Upload {
  jobId: string;
  path: string;
  size: number;
  received: number;
  hash: ReturnType<typeof createHash>;
  body: PassThrough;
  stored: Promise<void>;
}

export function uploadArtifactHandler(
  deps: ArtifactServiceDeps,
  toStatus: (err: unknown) => grpc.StatusObject,
): grpc.handleClientStreamingCall<ArtifactChunk__Output, ArtifactUploaded> {
  const { limits } = deps;

  async function begin(
    call: grpc.ServerReadableStream<ArtifactChunk__Output, ArtifactUploaded>,
    chunk: ArtifactChunk__Output,
  ): Promise<Upload> {
    const header = chunk.header;
    if (chunk.part !== 'header' || !header)
      throw new ArtifactRefusedError(
        grpc.status.INVALID_ARGUMENT,
        'the first message of an upload must be its header',
      );
    const job = await authenticate(deps.tokens, call.metadata, header.jobId, { fresh: true });
    let artifactPath: string;
    try {
      artifactPath = validateArtifactPath(header.path);
    } catch (err) {
      throw new ArtifactRefusedError(
        grpc.status.INVALID_ARGUMENT,
        err instanceof InputError ? err.message : String(err),
      );
    }
    const size = header.size;
    if (size > limits.maxFileBytes) {
      throw new ArtifactRefusedError(
        grpc.status.RESOURCE_EXHAUSTED,
        `artifact ${artifactPath} is ${formatSize(size)}, over the per-file limit of ${formatSize(limits.maxFileBytes)} (SOLSTICE_ARTIFACT_MAX_FILE_SIZE)`,
      );
    }
    const others = await deps.artifacts.totalSize(job.id, artifactPath);
    if (others + size > limits.maxJobBytes) {
      throw new ArtifactRefusedError(
        grpc.status.RESOURCE_EXHAUSTED,
        `artifact ${artifactPath} (${formatSize(size)}) would bring this job's artifacts to ${formatSize(others + size)}, over the per-job limit of ${formatSize(limits.maxJobBytes)} (SOLSTICE_ARTIFACT_MAX_JOB_SIZE)`,
      );
    }
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    // A refusal may destroy the body before the store's own pipeline listens to it.
    body.on('error', () => undefined);
    const stored = deps.blobs.put(artifactBlobKey(job.id, artifactPath), body);
    // Observed now so a failed put is not an unhandled rejection before `finish` awaits it.
    stored.catch(() => undefined);
    return { jobId: job.id, path: artifactPath, size, received: 0, hash: createHash('sha256'), body, stored };
  }

  return (call, callback) => {
    let upload: Upload | undefined;
    let done = false;
    const fail = (err: unknown): void => {
      if (done) return;
      done = true;
      upload?.body.destroy(err instanceof Error ? err : new Error(String(err)));
      if (!(err instanceof ArtifactRefusedError)) deps.log.warn({ err }, 'artifact upload failed');
      // Answer once the store has dropped what it had written, so nothing half-stored outlives the call.
      void (upload?.stored ?? Promise.resolve()).then(
        () => callback(toStatus(err)),
        () => callback(toStatus(err)),
      );
    };

    // Chunks are handled one at a time: the header's checks are async, and a body that cannot
    // take more (a slow blob store) pauses the call, which is the back-pressure to the runner.
    let chain = Promise.resolve();
    call.on('data', (chunk: ArtifactChunk__Output) => {
      call.pause();
      chain = chain
        .then(async () => {
          if (done) return;
          if (!upload) {
            upload = await begin(call, chunk);
            return;
          }
          if (chunk.part !== 'data' || !chunk.data)
            throw new ArtifactRefusedError(
              grpc.status.INVALID_ARGUMENT,
              'an upload has one header, then data',
            );
          upload.received += chunk.data.length;
          if (upload.received > upload.size) {
            throw new ArtifactRefusedError(
              grpc.status.INVALID_ARGUMENT,
              `artifact ${upload.path} sent more than the ${upload.size} bytes its header announced`,
            );
          }
          upload.hash.update(chunk.data);
          if (!upload.body.write(chunk.data)) {
            const body = upload.body;
            await new Promise<void>((resolve) => {
              const go = () => {
                body.off('drain', go);
                body.off('close', go);
                resolve();
              };
              body.on('drain', go);
              body.on('close', go);
            });
          }
        })
        .catch(fail)
        .finally(() => call.resume());
    });
    call.on('end', () => {
      void chain.then(async () => {
        if (done) return;
        try {
          if (!upload)
            throw new ArtifactRefusedError(
              grpc.status.INVALID_ARGUMENT,
              'an upload must start with its header',
            );
          const u = upload;
          if (u.received !== u.size) {
            throw new ArtifactRefusedError(
              grpc.status.INVALID_ARGUMENT,
              `artifact ${u.path} ended after ${u.received} of the ${u.size} bytes its header announced`,
            );
          }
          u.body.end();
          await u.stored;
          const sha256 = u.hash.digest('hex');
          await deps.artifacts.record(u.jobId, { path: u.path, size: u.size, sha256 });
          deps.log.info({ jobId: u.jobId, path: u.path, size: u.size }, 'artifact stored');
          done = true;
          callback(null, { path: u.path, size: u.size, sha256 });
        } catch (err) {
          fail(err);
        }
      });
    });
    call.on('cancelled', () => {
      if (!done) {
        done = true;
        upload?.body.destroy(new Error('the runner cancelled the upload'));
      }
    });
    call.on('error', (err) => fail(err));
  };
}
