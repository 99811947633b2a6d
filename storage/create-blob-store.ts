/** The one place that decides where blobs go: S3 when S3_BUCKET is set, else the filesystem. */
import { FsBlobStore, type BlobStore } from './blob-store';
import type { Config } from '../platform/config';
import type { S3BlobStoreOptions } from './s3-blob-store';

export type BlobStoreConfig = Pick<
  Config,
  | 'blobFsRoot'
  | 's3Bucket'
  | 's3Endpoint'
  | 'awsRegion'
  | 's3ForcePathStyle'
  | 's3Prefix'
  | 's3ConnectTimeoutMs'
  | 's3RequestTimeoutMs'
  | 's3MaxAttempts'
>;

export function createBlobStore(
  cfg: BlobStoreConfig,
  extra: Pick<S3BlobStoreOptions, 'credentials' | 'partSize' | 'queueSize'> = {},
): BlobStore {
  if (!cfg.s3Bucket) return new FsBlobStore(cfg.blobFsRoot);
  // The AWS SDK is loaded only for S3: a process on the filesystem store would carry it for nothing.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deferred on purpose (above)
  const { S3BlobStore } = require('./s3-blob-store') as typeof import('./s3-blob-store');
  return new S3BlobStore({
    bucket: cfg.s3Bucket,
    endpoint: cfg.s3Endpoint,
    region: cfg.awsRegion,
    forcePathStyle: cfg.s3ForcePathStyle,
    prefix: cfg.s3Prefix,
    connectTimeoutMs: cfg.s3ConnectTimeoutMs,
    requestTimeoutMs: cfg.s3RequestTimeoutMs,
    maxAttempts: cfg.s3MaxAttempts,
    ...extra,
  });
}
