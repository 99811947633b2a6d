/**
 * Issue 20: the local provider's runner cache. The host keeps the runner by sha256, asks the
 * runner server whether it is still the current one, and hashes its copy before every use: a
 * copy changed on disk is fetched again, never handed to a machine.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRunnerServer, type RunnerServer } from '../../../runner-api/runner-download';
import { RunnerCache } from '../../../provisioning/runner-cache';
import { freePort } from '../../../platform/net';

let dir: string;
let bundle: string;
let server: RunnerServer;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-runner-cache-'));
  bundle = path.join(dir, 'runner.js');
  writeFileSync(bundle, 'console.log("one")\n');
  server = await startRunnerServer({ addr: '127.0.0.1:0', bundlePath: bundle });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('downloaded once, then verified from the cache; a new bundle replaces it', async () => {
  const cacheDir = path.join(dir, 'cache');
  const cache = new RunnerCache(cacheDir, server.url);
  const first = await cache.current();
  expect(first?.sha256).toBe(sha('console.log("one")\n'));
  expect(first?.body.toString()).toBe('console.log("one")\n');
  expect(readdirSync(cacheDir)).toEqual([`runner-${first?.sha256}.js`]);

  // A fresh worker process (a new RunnerCache) finds the copy and is told it is current.
  const again = await new RunnerCache(cacheDir, server.url).current();
  expect(again?.sha256).toBe(first?.sha256);

  writeFileSync(bundle, 'console.log("two")\n');
  const next = await cache.current();
  expect(next?.body.toString()).toBe('console.log("two")\n');
});

test('a cached copy changed on disk is fetched anew, never used', async () => {
  const cacheDir = path.join(dir, 'tampered');
  const cache = new RunnerCache(cacheDir, server.url);
  const good = await cache.current();
  writeFileSync(path.join(cacheDir, `runner-${good?.sha256}.js`), 'process.exit(7)\n');
  const after = await new RunnerCache(cacheDir, server.url).current();
  expect(after?.sha256).toBe(good?.sha256);
  expect(after?.body.equals(good!.body)).toBe(true);
});

test('no runner server: undefined, so the machine downloads it itself', async () => {
  const cache = new RunnerCache(path.join(dir, 'none'), `http://127.0.0.1:${await freePort()}/runner.js`);
  expect(await cache.current()).toBeUndefined();
});
