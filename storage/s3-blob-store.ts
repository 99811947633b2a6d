/**
 * The blob store on S3 or any S3-compatible server (MinIO, versitygw, Ceph RGW, ...).
 *
 * - Timeouts: a connection timeout, and a request timeout that covers sending a request (one
 *   upload part) until the response starts and also bounds pauses while a body streams.
 * - Retries: the SDK's standard retry mode (exponential backoff with jitter) for throttling,
 *   5xx and network errors; uploads retry per part.
 * - Streams of unknown length are uploaded in parts (`@aws-sdk/lib-storage`), so memory stays
 *   at most `partSize * queueSize` however large the log or artifact is.
 * - Keys are checked by the same `validateKey` as the filesystem store and may live under a
 *   key prefix (a folder in the bucket).
 * - Failures become typed errors: DependencyUnavailableError (server unreachable, 5xx after
 *   retries, bucket missing), ConfigError (credentials refused), BlobStoreError (the rest).
 *   Credentials come from the AWS SDK's default chain and never appear in messages.
 */
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  paginateListObjectsV2,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { validateKey, validatePrefix, type BlobInfo, type BlobStore, type PutOptions } from './blob-store';
import { ConfigError, DependencyUnavailableError, InputError, SolsticeError } from '../platform/errors';

/** An S3 operation failed for a reason that is neither connectivity nor configuration. */
export class BlobStoreError extends SolsticeError {}

export interface S3BlobStoreOptions {
  bucket: string;
  /** URL of an S3-compatible server; unset: AWS S3. */
  endpoint?: string;
  region: string;
  /** `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint>/<key>`; self-hosted servers want this. */
  forcePathStyle: boolean;
  /** Folder inside the bucket every key lives under; '' for none. */
  prefix?: string;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Attempts per request including the first (1: no retries). */
  maxAttempts?: number;
  /** Explicit credentials (tests); otherwise the AWS SDK's default credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Multipart upload part size in bytes (S3's minimum is 5 MiB). */
  partSize?: number;
  /** Parts uploaded at once. Memory per upload is at most partSize * queueSize. */
  queueSize?: number;
}

const MiB = 1024 * 1024;

/** Error codes and names that mean the server could not be reached or did not answer in time. */
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'TimeoutError',
  'RequestTimeout',
]);
const ACCESS_ERRORS = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'CredentialsProviderError',
  'ExpiredToken',
  'InvalidToken',
  'XAdminUserNotFound', // versitygw's answer to an unknown access key
]);

interface AwsLikeError extends Error {
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly where: string;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(opts: S3BlobStoreOptions) {
    this.bucket = opts.bucket;
    this.prefix = normalizePrefix(opts.prefix ?? '');
    this.where = opts.endpoint ?? `AWS S3 (${opts.region})`;
    this.partSize = Math.max(opts.partSize ?? 8 * MiB, 5 * MiB);
    this.queueSize = Math.max(opts.queueSize ?? 4, 1);
    const requestTimeout = opts.requestTimeoutMs ?? 60_000;
    const config: S3ClientConfig = {
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      credentials: opts.credentials,
      maxAttempts: Math.max(opts.maxAttempts ?? 3, 1),
      retryMode: 'standard',
      // Options for the SDK's NodeHttpHandler.
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs ?? 5000,
        requestTimeout,
        throwOnRequestTimeout: true,
        socketTimeout: requestTimeout,
        httpAgent: { keepAlive: true, maxSockets: 64 },
        httpsAgent: { keepAlive: true, maxSockets: 64 },
      },
      // AWS answers a wrong region with a redirect; self-hosted servers have one region.
      followRegionRedirects: opts.endpoint === undefined,
    };
    this.client = new S3Client(config);
  }

  private objectKey(key: string): string {
    validateKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async put(key: string, body: Buffer | string | Readable, opts: PutOptions = {}): Promise<void> {
    const Key = this.objectKey(key);
    // Errors of the caller's stream are theirs, not S3's: remember them to rethrow as they are.
    let sourceError: unknown;
    if (typeof body !== 'string' && !Buffer.isBuffer(body)) body.once('error', (e) => (sourceError = e));
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: body, ContentType: opts.contentType },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      if (sourceError) throw sourceError;
      throw this.translate(err, 'upload', key);
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    const body = await this.open(key);
    if (!body) return undefined;
    try {
      return Buffer.from(await body.transformToByteArray());
    } catch (err) {
      throw this.translate(err, 'download', key);
    }
  }

  async getStream(key: string): Promise<Readable | undefined> {
    const body = await this.open(key);
    return body as Readable | undefined;
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer | undefined> {
    if (end <= start) return Buffer.alloc(0);
    const body = await this.open(key, `bytes=${start}-${end - 1}`);
    if (!body) return undefined;
    try {
      return Buffer.from(await body.transformToByteArray());
    } catch (err) {
      throw this.translate(err, 'download', key);
    }
  }

  private async open(key: string, Range?: string) {
    const Key = this.objectKey(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range }));
      if (!res.Body) throw new BlobStoreError(`S3 returned no body for "${key}" in ${this.describe()}`);
      return res.Body;
    } catch (err) {
      if (nameOf(err) === 'NoSuchKey') return undefined;
      throw this.translate(err, 'download', key);
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const folder = validatePrefix(prefix);
    const base = [this.prefix, folder].filter(Boolean).join('/');
    const Prefix = base ? `${base}/` : undefined;
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    const found: BlobInfo[] = [];
    try {
      for await (const page of paginateListObjectsV2(
        { client: this.client },
        { Bucket: this.bucket, Prefix },
      )) {
        for (const obj of page.Contents ?? []) {
          if (obj.Key) found.push({ key: obj.Key.slice(strip), size: obj.Size ?? 0 });
        }
      }
    } catch (err) {
      throw this.translate(err, 'list', prefix);
    }
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    const Key = this.objectKey(key);
    try {
      // S3 answers a delete of a missing key with success too.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      throw this.translate(err, 'delete', key);
    }
  }

  async check(): Promise<void> {
    // A one-key listing rather than HeadBucket: HEAD answers have no body, so a missing bucket
    // and an unknown access key can look the same (a bare 404); this also proves list access.
    try {
      await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix ? `${this.prefix}/` : undefined,
          MaxKeys: 1,
        }),
      );
    } catch (err) {
      throw this.translate(err, 'check', '');
    }
  }

  describe(): string {
    const at = this.prefix ? `${this.bucket}/${this.prefix}` : this.bucket;
    return `s3://${at} at ${this.where}`;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private missingBucket(cause: unknown): DependencyUnavailableError {
    return new DependencyUnavailableError(
      `S3 bucket "${this.bucket}"`,
      this.where,
      `The bucket does not exist. Create it (e.g. \`aws s3 mb s3://${this.bucket}` +
        (this.where.startsWith('AWS') ? '' : ` --endpoint-url ${this.where}`) +
        '`) or set S3_BUCKET to an existing bucket.',
      { cause: withMessage(cause, 'no such bucket') },
    );
  }

  /** Maps an SDK or network error to one of our typed errors. */
  private translate(err: unknown, op: string, key: string): Error {
    if (err instanceof SolsticeError) return err;
    const name = nameOf(err);
    const status = (err as AwsLikeError)?.$metadata?.httpStatusCode;
    if (name === 'NoSuchBucket') return this.missingBucket(err);
    if (NETWORK_ERRORS.has(name) || (status !== undefined && status >= 500)) {
      return new DependencyUnavailableError(
        `S3 (bucket "${this.bucket}")`,
        this.where,
        this.where.startsWith('AWS')
          ? 'Check the network path to AWS S3 and AWS_REGION, or unset S3_BUCKET to use the filesystem store.'
          : `Start the S3 server at ${this.where} (S3_ENDPOINT) or point S3_ENDPOINT at a running one; ` +
              'unset S3_BUCKET to use the filesystem store. Slow networks: raise S3_CONNECT_TIMEOUT / S3_REQUEST_TIMEOUT.',
        { cause: withMessage(err, name) },
      );
    }
    if (ACCESS_ERRORS.has(name) || status === 403) {
      return new ConfigError(
        `S3 refused access to bucket "${this.bucket}" at ${this.where} (${name || status})`,
        'Check the credentials the AWS SDK finds (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...) ' +
          'and that they may read, write and list the bucket.',
        { cause: err },
      );
    }
    const what = key ? `"${key}"` : 'the bucket';
    return new BlobStoreError(
      `S3 ${op} of ${what} in ${this.describe()} failed: ${describe(err)}`,
      undefined,
      {
        cause: err,
      },
    );
  }
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  if (!trimmed) return '';
  try {
    return validateKey(trimmed);
  } catch (err) {
    throw new ConfigError(
      `S3_PREFIX "${prefix}" is not a valid folder`,
      'Use a relative path such as solstice/prod, without . or .. parts.',
      { cause: err instanceof InputError ? err : undefined },
    );
  }
}

function nameOf(err: unknown): string {
  const e = err as AwsLikeError | undefined;
  // Node network errors carry `code`; SDK service errors carry `name` (and sometimes `Code`).
  if (e?.code && NETWORK_ERRORS.has(e.code)) return e.code;
  const name = e?.Code ?? e?.name ?? '';
  if (name && name !== 'Error') return name;
  // An error from another realm (e.g. under jest) reaches us only as the SDK's text wrapper,
  // "AWS SDK error wrapper for Error: connect ECONNREFUSED ...": recover the code from it.
  const code = /\b(E[A-Z_]{4,}|TimeoutError)\b/.exec(e?.message ?? '')?.[1];
  return code && NETWORK_ERRORS.has(code) ? code : name;
}

function describe(err: unknown): string {
  return err instanceof Error && err.message ? err.message : nameOf(err) || String(err);
}

/**
 * A cause whose message reads well after "is not reachable at <endpoint>: ". Node's AggregateError
 * (several addresses refused) has an empty message, and cross-realm errors arrive wrapped.
 */
function withMessage(err: unknown, fallback: string): unknown {
  const message = err instanceof Error ? err.message : '';
  const unwrapped = message.replace(/^AWS SDK error wrapper for (Error: )?/, '');
  if (message && unwrapped === message) return err;
  return new Error(unwrapped || (err as AwsLikeError)?.code || fallback, { cause: err });
}
