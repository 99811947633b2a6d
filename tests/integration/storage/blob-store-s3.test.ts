/**
 * The blob store against a real S3-compatible server (versitygw, built by infra/bootstrap.sh,
 * started on a free 127.0.0.1 port for this file) and against the filesystem: one contract,
 * run for every store, then what only S3 has (errors of an unreachable or misconfigured server).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { FsBlobStore, type BlobStore } from '../../../storage/blob-store';
import { loadConfig } from '../../../platform/config';
import { createBlobStore } from '../../../storage/create-blob-store';
import { ConfigError, DependencyUnavailableError, InputError } from '../../../platform/errors';
import { freePort } from '../../../platform/net';
import { startS3DevServer, type S3DevServer } from '../../../devstack/s3-dev-server';
import { S3BlobStore, type S3BlobStoreOptions } from '../../../storage/s3-blob-store';

const MiB = 1024 * 1024;

let server: S3DevServer;
let tmp: string;
const opened: BlobStore[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-blob-s3-'));
  server = await startS3DevServer({ logFile: path.join(tmp, 'versitygw.log') });
});

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await server?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function s3Store(bucket: string, extra: Partial<S3BlobStoreOptions> = {}): S3BlobStore {
  const store = new S3BlobStore({
    bucket,
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: server.credentials,
    connectTimeoutMs: 2000,
    requestTimeoutMs: 10_000,
    ...extra,
  });
  opened.push(store);
  return store;
}

async function newBucket(): Promise<string> {
  const name = `t-${randomUUID().slice(0, 18)}`;
  await server.createBucket(name);
  return name;
}

/** A stream of `total` bytes in uneven chunks, whose length nobody knows in advance. */
function generated(total: number, seed = 'x'): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  let n = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const size = Math.min(total - sent, 64 * 1024 + ((n++ * 7919) % 4096));
      const chunk = createHash('sha512').update(`${seed}${n}`).digest();
      const buf = Buffer.alloc(size, chunk);
      hash.update(buf);
      sent += size;
      this.push(buf);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map((p) => path.join(dir, p));
}

interface Subject {
  store: BlobStore;
  /** Folders where a traversal would land if a key escaped the store. */
  outside: string[];
}

const subjects: [string, () => Promise<Subject>][] = [
  [
    'FsBlobStore',
    async () => {
      const dir = fs.mkdtempSync(path.join(tmp, 'fs-'));
      return { store: new FsBlobStore(path.join(dir, 'store')), outside: [dir] };
    },
  ],
  ['S3BlobStore', async () => ({ store: s3Store(await newBucket()), outside: [server.dataDir] })],
  [
    'S3BlobStore with a key prefix',
    async () => ({
      store: s3Store(await newBucket(), { prefix: 'solstice/ci/' }),
      outside: [server.dataDir],
    }),
  ],
];

describe.each(subjects)('%s', (_name, make) => {
  let store: BlobStore;
  let outside: string[];

  beforeEach(async () => {
    ({ store, outside } = await make());
    await store.check();
  });

  test('puts strings, buffers and streams and gets them back', async () => {
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await store.put('jobs/1/log.txt', 'hello\n');
    await store.put('jobs/1/bytes.bin', binary);
    await store.put('jobs/1/stream.txt', Readable.from([Buffer.from('a'), 'b', Buffer.from('c')]));
    await store.put('jobs/1/artifacts/naïve file+plus (1).txt', 'spaces and unicode');
    expect((await store.get('jobs/1/log.txt'))?.toString()).toBe('hello\n');
    expect(await store.get('jobs/1/bytes.bin')).toEqual(binary);
    expect((await store.get('jobs/1/stream.txt'))?.toString()).toBe('abc');
    expect((await store.get('jobs/1/artifacts/naïve file+plus (1).txt'))?.toString()).toBe(
      'spaces and unicode',
    );
    const stream = await store.getStream('jobs/1/log.txt');
    expect(stream).toBeDefined();
    expect(Buffer.concat(await stream!.toArray()).toString()).toBe('hello\n');
  });

  test('an empty body is a blob too', async () => {
    await store.put('jobs/1/empty', '');
    await store.put('jobs/1/empty-stream', Readable.from([]));
    expect(await store.get('jobs/1/empty')).toEqual(Buffer.alloc(0));
    expect(await store.get('jobs/1/empty-stream')).toEqual(Buffer.alloc(0));
  });

  test('overwriting replaces the whole blob', async () => {
    await store.put('jobs/1/log.txt', 'a long first version\n');
    await store.put('jobs/1/log.txt', 'short\n');
    expect((await store.get('jobs/1/log.txt'))?.toString()).toBe('short\n');
  });

  test('delete removes one blob; deleting a missing key is not an error', async () => {
    await store.put('jobs/1/a.txt', 'a');
    await store.put('jobs/1/b.txt', 'b');
    await store.delete('jobs/1/a.txt');
    await store.delete('jobs/1/a.txt');
    await store.delete('jobs/404/nothing');
    expect(await store.get('jobs/1/a.txt')).toBeUndefined();
    expect((await store.list('jobs/1')).map((b) => b.key)).toEqual(['jobs/1/b.txt']);
  });

  test('a missing key is undefined, not an error', async () => {
    expect(await store.get('jobs/404/log.txt')).toBeUndefined();
    expect(await store.getStream('jobs/404/log.txt')).toBeUndefined();
    expect(await store.list('jobs/404')).toEqual([]);
  });

  test('streams a multi-part-sized body of unknown length (12 MiB)', async () => {
    const source = generated(12 * MiB);
    await store.put('jobs/big/log.txt', source.stream);
    const back = await store.getStream('jobs/big/log.txt');
    expect(await sha256Of(back!)).toBe(source.sha256());
    expect(await store.list('jobs/big')).toEqual([{ key: 'jobs/big/log.txt', size: 12 * MiB }]);
  });

  test('lists the blobs under a folder, at any depth, sorted', async () => {
    for (const key of [
      'jobs/1/log.txt',
      'jobs/1/artifacts/sub/b.bin',
      'jobs/1/artifacts/a.txt',
      'jobs/10/log.txt',
      'jobs/2/log.txt',
    ])
      await store.put(key, key);
    expect(await store.list('jobs/1')).toEqual([
      { key: 'jobs/1/artifacts/a.txt', size: 'jobs/1/artifacts/a.txt'.length },
      { key: 'jobs/1/artifacts/sub/b.bin', size: 'jobs/1/artifacts/sub/b.bin'.length },
      { key: 'jobs/1/log.txt', size: 'jobs/1/log.txt'.length },
    ]);
    expect((await store.list('jobs/1/artifacts/')).map((b) => b.key)).toEqual([
      'jobs/1/artifacts/a.txt',
      'jobs/1/artifacts/sub/b.bin',
    ]);
    expect((await store.list('')).map((b) => b.key)).toEqual([
      'jobs/1/artifacts/a.txt',
      'jobs/1/artifacts/sub/b.bin',
      'jobs/1/log.txt',
      'jobs/10/log.txt',
      'jobs/2/log.txt',
    ]);
  });

  test('a failing source stream stores nothing and rejects with its own error', async () => {
    let pushed = 0;
    const failing = new Readable({
      read() {
        // Fail after more than one part's worth, so S3 has a multipart upload to abort.
        if (pushed >= 9 * MiB) return void this.destroy(new Error('source broke'));
        pushed += MiB;
        this.push(Buffer.alloc(MiB, 1));
      },
    });
    await expect(store.put('jobs/2/log.txt', failing)).rejects.toThrow('source broke');
    expect(await store.get('jobs/2/log.txt')).toBeUndefined();
    expect(await store.list('')).toEqual([]);
  });

  test.each([
    '../escape',
    '/etc/passwd',
    '/escape',
    'jobs/../../escape',
    '..',
    '.',
    'jobs/./log.txt',
    '%2e%2e/escape',
    '%2E%2E%2Fescape',
    'jobs/%2F..%2Fx',
    '..%2fescape',
    '%252e%252e/escape',
    'a//b',
    'jobs/1/',
    'a\\..\\b',
    '..\\escape',
    'jobs\\1',
    'nul\0byte',
    '%',
    '',
  ])('refuses the key %p for every operation', async (key) => {
    await expect(store.put(key, 'escape')).rejects.toBeInstanceOf(InputError);
    await expect(store.put(key, Readable.from(['escape']))).rejects.toBeInstanceOf(InputError);
    await expect(store.get(key)).rejects.toBeInstanceOf(InputError);
    await expect(store.getStream(key)).rejects.toBeInstanceOf(InputError);
    for (const dir of outside) expect(filesUnder(dir).filter((p) => /escape|passwd/.test(p))).toEqual([]);
    expect(await store.list('')).toEqual([]);
  });

  test.each(['../', '/', '..', 'a//', '%2e%2e/'])('refuses to list %p', async (prefix) => {
    await expect(store.list(prefix)).rejects.toBeInstanceOf(InputError);
  });
});

describe('S3BlobStore only', () => {
  test('streams in parts: a 12 MiB stream becomes a two-part object', async () => {
    const bucket = await newBucket();
    const store = s3Store(bucket, { partSize: 8 * MiB });
    await store.put('jobs/mp/log.txt', generated(12 * MiB).stream);
    const client = new S3Client({
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: server.credentials,
    });
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'jobs/mp/log.txt' }));
      // Multipart ETags are md5-of-part-md5s followed by "-<number of parts>".
      expect(head.ETag).toMatch(/-2"$/);
      expect(head.ContentLength).toBe(12 * MiB);
    } finally {
      client.destroy();
    }
  });

  test('a failed streaming upload aborts its multipart upload', async () => {
    const bucket = await newBucket();
    const store = s3Store(bucket, { partSize: 5 * MiB, queueSize: 1 });
    let pushed = 0;
    const failing = new Readable({
      read() {
        if (pushed >= 11 * MiB) return void this.destroy(new Error('source broke'));
        pushed += MiB;
        this.push(Buffer.alloc(MiB, 2));
      },
    });
    await expect(store.put('jobs/abort/log.txt', failing)).rejects.toThrow('source broke');
    const client = new S3Client({
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: server.credentials,
    });
    try {
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      expect(uploads.Uploads ?? []).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  test('a key prefix is a folder in the bucket', async () => {
    const bucket = await newBucket();
    await s3Store(bucket, { prefix: 'solstice/ci' }).put('jobs/1/log.txt', 'under the prefix');
    const file = path.join(server.dataDir, bucket, 'solstice/ci/jobs/1/log.txt');
    expect(fs.readFileSync(file, 'utf8')).toBe('under the prefix');
    expect(() => s3Store(bucket, { prefix: '../other' })).toThrow(ConfigError);
  });

  test('an unreachable endpoint is a DependencyUnavailableError naming endpoint and bucket, quickly', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const store = s3Store('logs', { endpoint, maxAttempts: 2 });
    const started = Date.now();
    for (const attempt of [
      () => store.put('jobs/1/log.txt', 'x'),
      () => store.put('jobs/1/log.txt', Readable.from(['x'])),
      () => store.get('jobs/1/log.txt'),
      () => store.getStream('jobs/1/log.txt'),
      () => store.list('jobs'),
      () => store.check(),
    ]) {
      const err = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DependencyUnavailableError);
      const dep = err as DependencyUnavailableError;
      expect(dep.message).toContain(endpoint);
      expect(dep.message).toContain('"logs"');
      expect(dep.message).toMatch(/: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
      expect(dep.hint).toMatch(/S3_ENDPOINT/);
    }
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('a server that accepts but never answers times out into a DependencyUnavailableError', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const store = s3Store('logs', {
        endpoint: `http://127.0.0.1:${port}`,
        requestTimeoutMs: 300,
        maxAttempts: 2,
      });
      const started = Date.now();
      await expect(store.get('jobs/1/log.txt')).rejects.toBeInstanceOf(DependencyUnavailableError);
      await expect(store.put('jobs/1/log.txt', 'x')).rejects.toBeInstanceOf(DependencyUnavailableError);
      expect(Date.now() - started).toBeLessThan(8000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('a missing bucket is a DependencyUnavailableError that says how to create it', async () => {
    const store = s3Store('no-such-bucket');
    for (const attempt of [() => store.check(), () => store.put('a', 'x'), () => store.get('a')]) {
      const err = (await attempt().catch((e: unknown) => e)) as DependencyUnavailableError;
      expect(err).toBeInstanceOf(DependencyUnavailableError);
      expect(err.message).toContain('"no-such-bucket"');
      expect(err.message).toContain(server.endpoint);
      expect(err.hint).toContain(`aws s3 mb s3://no-such-bucket --endpoint-url ${server.endpoint}`);
    }
  });

  test.each([
    ['an unknown access key', 'nobody'],
    ['a wrong secret', 'the server key'],
  ])('refused credentials (%s) are a ConfigError that does not repeat the secret', async (_what, key) => {
    const bucket = await newBucket();
    const secretAccessKey = 'wrong-secret-do-not-print';
    const accessKeyId = key === 'nobody' ? key : server.credentials.accessKeyId;
    const store = s3Store(bucket, { credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
    for (const attempt of [
      () => store.put('a', 'x'),
      () => store.get('a'),
      () => store.list(''),
      () => store.check(),
    ]) {
      const err = (await attempt().catch((e: unknown) => e)) as ConfigError;
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toContain(bucket);
      expect(`${err.message} ${err.hint}`).not.toContain(secretAccessKey);
      expect(err.hint).toContain('AWS_ACCESS_KEY_ID');
    }
  });

  test('describe() names the bucket, prefix and endpoint', () => {
    expect(s3Store('logs', { prefix: 'ci' }).describe()).toBe(`s3://logs/ci at ${server.endpoint}`);
  });
});

describe('createBlobStore', () => {
  test('uses S3 when S3_BUCKET is set, with path-style addressing for a custom endpoint', async () => {
    const bucket = await newBucket();
    const cfg = loadConfig(
      {},
      {
        S3_BUCKET: bucket,
        S3_ENDPOINT: server.endpoint,
        S3_PREFIX: 'p',
        BLOB_FS_ROOT: path.join(tmp, 'unused'),
      },
    );
    expect(cfg.s3ForcePathStyle).toBe(true);
    expect(cfg.awsRegion).toBe('us-east-1');
    const store = createBlobStore(cfg, { credentials: server.credentials });
    opened.push(store);
    expect(store).toBeInstanceOf(S3BlobStore);
    await store.put('jobs/1/log.txt', 'via config');
    expect(fs.readFileSync(path.join(server.dataDir, bucket, 'p/jobs/1/log.txt'), 'utf8')).toBe('via config');
    expect(fs.existsSync(path.join(tmp, 'unused'))).toBe(false);
  });

  test('uses the filesystem otherwise', () => {
    const root = path.join(tmp, 'fs-default');
    const cfg = loadConfig({}, { BLOB_FS_ROOT: root });
    expect(cfg.s3Bucket).toBeUndefined();
    const store = createBlobStore(cfg);
    expect(store).toBeInstanceOf(FsBlobStore);
    expect(store.describe()).toBe(`file://${root}`);
  });

  test('S3 settings are validated and path style defaults off for AWS itself', () => {
    expect(loadConfig({}, { S3_BUCKET: 'b' }).s3ForcePathStyle).toBe(false);
    expect(loadConfig({}, { S3_ENDPOINT: 'http://x:1', S3_FORCE_PATH_STYLE: 'false' }).s3ForcePathStyle).toBe(
      false,
    );
    expect(() => loadConfig({}, { S3_ENDPOINT: 'not a url' })).toThrow(/S3_ENDPOINT must be a URL/);
    expect(() => loadConfig({}, { S3_MAX_ATTEMPTS: '0' })).toThrow(/S3_MAX_ATTEMPTS must be at least 1/);
    expect(loadConfig({}, { S3_REQUEST_TIMEOUT: '2m' }).s3RequestTimeoutMs).toBe(120_000);
  });
});

test('random bytes survive the round trip through S3 unchanged', async () => {
  const store = s3Store(await newBucket());
  const body = randomBytes(3 * MiB + 17);
  await store.put('jobs/r/blob.bin', body);
  expect((await store.get('jobs/r/blob.bin'))?.equals(body)).toBe(true);
});
