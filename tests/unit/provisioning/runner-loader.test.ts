/**
 * Issue 20: the local provider starts the runner through a loader that compiles it with a V8
 * code cache. The runner must not tell the difference from `node runner.js`: it is the main
 * module, its argv and __filename are its own, and the cache's setting does not reach it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RUNNER_LOADER_SOURCE } from '../../../provisioning/runner-loader';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-runner-loader-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the runner runs as its own main module, and the first run leaves a code cache the next one uses', () => {
  const runner = path.join(dir, 'runner.js');
  writeFileSync(
    runner,
    `#!/usr/bin/env node
if (require.main === module)
  console.log(JSON.stringify({ argv: process.argv.slice(1), file: __filename, cache: process.env.SOLSTICE_RUNNER_CODE_CACHE ?? null, os: require('os').platform() }));
`,
  );
  const loader = path.join(dir, 'runner-loader.js');
  writeFileSync(loader, RUNNER_LOADER_SOURCE);
  const cacheFile = path.join(dir, 'runner.v8cache');
  const run = () =>
    JSON.parse(
      execFileSync(process.execPath, [loader, runner, '--version'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, SOLSTICE_RUNNER_CODE_CACHE: cacheFile },
      }),
    ) as unknown;
  const plain = { argv: [runner, '--version'], file: runner, cache: null, os: os.platform() };
  expect(run()).toEqual(plain);
  expect(existsSync(cacheFile)).toBe(true);
  const written = statSync(cacheFile).mtimeMs;
  expect(run()).toEqual(plain);
  // Accepted, so not written again.
  expect(statSync(cacheFile).mtimeMs).toBe(written);
});
