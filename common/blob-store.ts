/**
 * Where logs and artifacts end up. Keys are relative, slash-separated paths such as
 * `jobs/<job id>/log.txt`; they are validated so a key can never address anything outside
 * the store. The filesystem store writes atomically (temp file + rename). S3 comes next.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { InputError } from './errors';

export interface BlobStore {
  put(key: string, body: Buffer | string | Readable): Promise<void>;
  get(key: string): Promise<Buffer | undefined>;
  describe(): string;
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
    return fs.readFile(this.pathOf(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }

  describe(): string {
    return `file://${this.root}`;
  }
}
