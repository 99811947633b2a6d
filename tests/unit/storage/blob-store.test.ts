import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FsBlobStore } from '../../../storage/blob-store';
import { InputError } from '../../../platform/errors';

let root: string;
let store: FsBlobStore;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-blob-'));
  store = new FsBlobStore(path.join(root, 'store'));
});

afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

test('writes buffers and streams under the root and reads them back', async () => {
  await store.put('jobs/1/log.txt', 'hello\n');
  await store.put('jobs/1/big.bin', Readable.from([Buffer.from('a'), Buffer.from('b')]));
  expect((await store.get('jobs/1/log.txt'))?.toString()).toBe('hello\n');
  expect((await store.get('jobs/1/big.bin'))?.toString()).toBe('ab');
  expect(await store.get('jobs/1/missing')).toBeUndefined();
  // Atomic writes leave no temp files behind.
  expect(fs.readdirSync(path.join(root, 'store/jobs/1')).sort()).toEqual(['big.bin', 'log.txt']);
});

test.each([
  '../escape',
  '/etc/passwd',
  'jobs/../../escape',
  '%2e%2e/escape',
  'jobs/%2F..%2Fx',
  'a//b',
  'a\\..\\b',
  '',
])('refuses the key %p', async (key) => {
  await expect(store.put(key, 'x')).rejects.toBeInstanceOf(InputError);
  expect(fs.existsSync(path.join(root, 'escape'))).toBe(false);
});

test('a failed streaming write leaves nothing behind', async () => {
  const failing = new Readable({
    read() {
      this.destroy(new Error('source broke'));
    },
  });
  await expect(store.put('jobs/2/log.txt', failing)).rejects.toThrow('source broke');
  expect(fs.readdirSync(path.join(root, 'store/jobs/2'))).toEqual([]);
});
