/**
 * Issue 21: the runner's checkout lets git use only the transports planning allows, so a
 * crafted repository URL (`ext::` runs a command, `fd::` waits on a descriptor for ever) fails
 * the checkout at once instead of running something or hanging the job.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkout, checkoutGitProtocols, isPassingFetchFailure } from '../../../runner/checkout';
import type { JobContext } from '../../../runner/job-context';
import { liveChildGroups } from '../../../platform/child-process';
import { freePort, waitForPort } from '../../../platform/net';
import { gitDaemonArgs } from '../../../provisioning/qemu/command-line';
import { makeRepo, type TestRepo } from '../../support/git-repo';
import { jobContext } from '../../support/job-context';

let dir: string;
let repo: TestRepo;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-checkout-'));
  repo = makeRepo({ '.solstice/job.sh': 'true\n' });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(repo.dir, { recursive: true, force: true });
});

const context = (repoUrl: string, commitSha: string, name: string): JobContext =>
  jobContext({ repoUrl, commitSha, workdir: path.join(dir, name) });

describe('checkout transports', () => {
  test('fetches from servers; file only for a local repository; never ext or fd', () => {
    const network = ['https', 'ssh', 'http', 'git'];
    expect(checkoutGitProtocols('https://forge.example/o/r.git')).toEqual(network);
    expect(checkoutGitProtocols('git@forge.example:o/r.git')).toEqual(network);
    // How the qemu provider's VM sees a local repository.
    expect(checkoutGitProtocols('git://10.0.2.102:9418/')).toEqual(network);
    expect(checkoutGitProtocols('/srv/git/r')).toEqual([...network, 'file']);
    expect(checkoutGitProtocols('file:///srv/git/r')).toEqual([...network, 'file']);
    expect(checkoutGitProtocols('ext::sh -c true')).toEqual(network);
    expect(checkoutGitProtocols('fd::3')).toEqual(network);
  });

  test('a local repository is checked out', async () => {
    const lines: string[] = [];
    const r = await checkout(context(repo.dir, repo.sha, 'local'), (l) => lines.push(l));
    expect(r).toEqual({ ok: true });
    expect(existsSync(path.join(dir, 'local', '.solstice/job.sh'))).toBe(true);
    expect(lines.join('\n')).toContain(`HEAD is now ${repo.sha}`);
  });

  test('a local repository served over git://, as the qemu provider serves it to its VM', async () => {
    const port = await freePort();
    // The provider's daemon, with its arguments.
    const daemon = spawn('git', gitDaemonArgs(port, repo.dir), { stdio: 'ignore' });
    try {
      await waitForPort('127.0.0.1', port, {
        timeoutMs: 30_000,
        isAlive: () => daemon.exitCode === null,
        what: 'git daemon',
      });
      const r = await checkout(context(`git://127.0.0.1:${port}/`, repo.sha, 'daemon'), () => {});
      expect(r).toEqual({ ok: true });
      expect(existsSync(path.join(dir, 'daemon', '.solstice/job.sh'))).toBe(true);
    } finally {
      const exited = new Promise((resolve) => daemon.once('exit', resolve));
      daemon.kill();
      await exited;
    }
  });

  test.each([
    ['ext', (marker: string) => `ext::sh -c touch% ${marker}`],
    ['fd', () => 'fd::3'],
  ])('an %s:: URL is refused without running anything or hanging', async (name, url) => {
    const marker = path.join(dir, `${name}-ran`);
    const lines: string[] = [];
    const r = await checkout(context(url(marker), 'f'.repeat(40), name), (l) => lines.push(l));
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.message).toMatch(/could not fetch repository/);
    expect(lines.join('\n')).toMatch(new RegExp(`transport '${name}' not allowed`));
    expect(existsSync(marker)).toBe(false);
    expect(liveChildGroups()).toEqual([]);
  });
});

describe('which fetch failures are retried', () => {
  test.each([
    [
      "fatal: unable to access 'http://h/r.git/': Failed to connect to h port 3000 after 0 ms: Couldn't connect to server",
      true,
    ],
    ["fatal: unable to access 'https://h/r.git/': Could not resolve host: h", true],
    ["fatal: unable to access 'https://h/r.git/': The requested URL returned error: 502", true],
    ['fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused', true],
    ['fatal: the remote end hung up unexpectedly', true],
    ["fatal: unable to access 'https://h/r.git/': The requested URL returned error: 403", false],
    ["fatal: could not read Username for 'https://h': terminal prompts disabled", false],
    ["fatal: repository 'https://h/o/r.git/' not found", false],
    ["fatal: transport 'ext' not allowed", false],
  ])('%s: %s', (line, passing) => {
    expect(isPassingFetchFailure([line])).toBe(passing);
  });
});
