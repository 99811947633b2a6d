/**
 * Where logs and artifacts end up. Keys are relative, slash-separated paths such as
 * `jobs/<job id>/log.txt`; they are validated so a key can never address anything outside
 * the store. Two implementations: the filesystem (`FsBlobStore`, atomic writes via temp file +
 * rename) and S3 (`S3BlobStore` in ./s3-blob-store); `createBlobStore` in ./create-blob-store
 * picks one from the configuration.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { InputError } from '../platform/errors';

export interface BlobInfo {
  /** The key as given to `put`, relative to the store (never including an S3 key prefix). */
  key: string;
  size: number;
}

export interface PutOptions {
  /** MIME type for stores that keep one (S3 `Content-Type`); the filesystem store has none. */
  contentType?: string;
}

export interface BlobStore {
  /** Writes the whole body or nothing; a stream of unknown length never sits in memory whole. */
  put(key: string, body: Buffer | string | Readable, opts?: PutOptions): Promise<void>;
  /** The blob's bytes, or undefined when there is no such key. */
  get(key: string): Promise<Buffer | undefined>;
  /** The blob as a stream (large logs, artifact downloads), or undefined when there is no such key. */
  getStream(key: string): Promise<Readable | undefined>;
  /** Bytes start..end-1 of the blob (a window of a finished log), or undefined when there is no such key. */
  getRange(key: string, start: number, end: number): Promise<Buffer | undefined>;
  /**
   * Every blob under a folder (`jobs/42/artifacts`, trailing slash optional; '' for all), at any
   * depth, sorted by key.
   */
  list(prefix: string): Promise<BlobInfo[]>;
  /** Removes the blob; removing a key that does not exist is not an error. */
  delete(key: string): Promise<void>;
  /** Throws a typed error (e.g. DependencyUnavailableError) when the store cannot be used. */
  check(): Promise<void>;
  describe(): string;
  /** Releases connections; the store must not be used afterwards. */
  close(): Promise<void>;
}

export function validateKey(key: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(key);
  } catch (err) {
    throw new InputError(`invalid blob key "${key}"`, undefined, { cause: err });
  }
  const parts = decoded.split('/');
  const bad =
    decoded.length === 0 ||
    decoded.includes('\\') ||
    decoded.includes('\0') ||
    decoded.startsWith('/') ||
    parts.some((p) => p === '' || p === '.' || p === '..');
  if (bad || decoded !== key)
    throw new InputError(`invalid blob key "${key}": use a relative path without . or .. parts`);
  return key;
}

/** A folder to list: '' (everything) or a valid key, with an optional trailing slash. Returns it without the slash. */
export function validatePrefix(prefix: string): string {
  if (prefix === '') return '';
  return validateKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

/** Temp files of writes in flight: `<target>.<uuid>.tmp`. */
const TEMP_FILE = /\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

export class FsBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  private pathOf(key: string): string {
    return path.join(this.root, ...validateKey(key).split('/'));
  }

  async put(key: string, body: Buffer | string | Readable): Promise<void> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    try {
      if (typeof body === 'string' || Buffer.isBuffer(body)) await fs.writeFile(tmp, body);
      else await pipeline(body, createWriteStream(tmp));
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    return fs.readFile(this.pathOf(key)).catch(undefinedIfMissing);
  }

  async getStream(key: string): Promise<Readable | undefined> {
    // Open first, so a missing key is known before the caller gets a stream.
    const file = await fs.open(this.pathOf(key), 'r').catch(undefinedIfMissing);
    return file?.createReadStream();
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer | undefined> {
    const file = await fs.open(this.pathOf(key), 'r').catch(undefinedIfMissing);
    if (!file) return undefined;
    try {
      const buf = Buffer.alloc(Math.max(0, end - start));
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await file.read(buf, got, buf.length - got, start + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } finally {
      await file.close();
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const folder = validatePrefix(prefix);
    const found: BlobInfo[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(undefinedIfMissing);
      for (const entry of entries ?? []) {
        const key = keyPrefix ? `${keyPrefix}/${entry.name}` : entry.name;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full, key);
        else if (entry.isFile() && !TEMP_FILE.test(entry.name)) {
          const stat = await fs.stat(full).catch(undefinedIfMissing);
          if (stat) found.push({ key, size: stat.size });
        }
      }
    };
    await walk(folder ? path.join(this.root, ...folder.split('/')) : this.root, folder);
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true });
  }

  async check(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true });
    await fs.access(this.root, fs.constants.W_OK);
  }

  describe(): string {
    return `file://${this.root}`;
  }

  async close(): Promise<void> {}
}

function undefinedIfMissing(err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
  throw err;
}
