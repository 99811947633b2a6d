/**
 * The suite's own leak check (tests/support/leak-check.ts, run by global-teardown.ts) sees a
 * leaked git, qemu or runner process of its run and only of its run, and a planning folder
 * left in the run's TMPDIR; and the teardown really fails the run: jest exits non-zero,
 * naming what was left.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engineTempLeftovers, failOnLeaks, leakedProcesses, RUN_MARKER_ENV } from '../../support/leak-check';

const ROOT = path.resolve(__dirname, '../../..');

/** A real process named `name` (sleep under another argv[0]) carrying a run's marker. */
const startNamed = (name: string, run: string): ChildProcess =>
  spawn('bash', ['-c', `exec -a ${name} sleep 60`], {
    env: { ...process.env, [RUN_MARKER_ENV]: run },
    stdio: 'ignore',
  });

/** Running, not only a zombie waiting for whichever process inherited it to reap it. */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 50 && !cond(); i++) await new Promise((r) => setTimeout(r, 100));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

test('a git process of the run is found by its marker; one of another run is not', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-leak-check-'));
  const ours = startNamed('git', 'run-ours');
  const theirs = startNamed('git', 'run-theirs');
  try {
    let found: number[] = [];
    await until(() => {
      found = leakedProcesses('run-ours', tmp).map((p) => p.pid);
      return found.includes(ours.pid!);
    }, 'the leaked git to be seen');
    expect(found).not.toContain(theirs.pid);
  } finally {
    ours.kill('SIGKILL');
    theirs.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("a planning folder left in the run's TMPDIR is reported", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-leak-check-'));
  try {
    fs.mkdirSync(path.join(tmp, 'solstice-plan-abc'));
    fs.mkdirSync(path.join(tmp, 'solstice-repo-abc'));
    expect(engineTempLeftovers(tmp)).toEqual(['solstice-plan-abc']);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// failOnLeaks is what the global teardown runs; the teardown itself is only run by a jest run of
// its own (the last test): in this process it would stop the whole run's Temporal server.
describe('the global teardown', () => {
  test('fails naming each git, qemu and runner process of the run left alive and each planning folder, and kills them', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-leak-check-'));
    const run = `run-${process.pid}-teardown`;
    const leaked = ['git', 'qemu-system-x86_64', '/srv/solstice/dist/runner/runner.js'].map((n) =>
      startNamed(n, run),
    );
    const other = startNamed('git', `${run}-other`);
    try {
      await until(() => leakedProcesses(run, tmp).length === leaked.length, 'the three processes to start');
      fs.mkdirSync(path.join(tmp, 'solstice-plan-left'));
      const err = await failOnLeaks({ id: run, tmp }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      const message = (err as Error).message;
      expect(message).toMatch(/^the test run leaked \(issue 21: nothing survives the suite\):/);
      for (const [p, name] of leaked.map((c, i) => [c.pid!, ['git', 'qemu-system', 'runner.js'][i]] as const))
        expect(message).toMatch(new RegExp(`process ${p} still alive: \\S*${name}`));
      expect(message).toContain('temporary folder left behind: solstice-plan-left');
      // What was left is killed and removed, so one failed run does not poison the next.
      await until(() => leaked.every((c) => c.exitCode !== null || c.signalCode !== null), 'the kills');
      expect(leaked.map((c) => c.signalCode)).toEqual(['SIGKILL', 'SIGKILL', 'SIGKILL']);
      expect(fs.existsSync(tmp)).toBe(false);
      expect(alive(other.pid!)).toBe(true);
    } finally {
      for (const c of [...leaked, other]) c.kill('SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 30_000);

  test('passes when the run left nothing', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-leak-check-'));
    await expect(failOnLeaks({ id: `run-${process.pid}-clean`, tmp })).resolves.toBeUndefined();
    expect(fs.existsSync(tmp)).toBe(false);
  });

  test('makes jest itself exit non-zero with the message', () => {
    // A jest run of its own: a global setup that leaves a git of its run and a planning
    // folder behind, one passing test, and the real teardown.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-leak-run-'));
    const pidFile = path.join(dir, 'leaked.pid');
    try {
      fs.writeFileSync(
        path.join(dir, 'setup.js'),
        `const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
module.exports = async () => {
  const tmp = fs.mkdtempSync(path.join(${JSON.stringify(dir)}, 'run-'));
  const id = 'run-' + process.pid;
  const c = spawn('bash', ['-c', 'exec -a git sleep 60'], { env: { ...process.env, ${RUN_MARKER_ENV}: id }, stdio: 'ignore', detached: true });
  c.unref();
  fs.writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));
  fs.mkdirSync(path.join(tmp, 'solstice-plan-left'));
  globalThis.__solsticeRun = { id, tmp };
};
`,
      );
      fs.writeFileSync(path.join(dir, 'ok.test.js'), "test('ok', () => expect(1).toBe(1));\n");
      const config = {
        rootDir: dir,
        testMatch: ['<rootDir>/ok.test.js'],
        globalSetup: '<rootDir>/setup.js',
        globalTeardown: path.join(ROOT, 'tests/support/global-teardown.ts'),
        transform: {
          '^.+\\.ts$': [
            require.resolve('ts-jest'),
            { tsconfig: path.join(ROOT, 'tsconfig.json'), isolatedModules: true },
          ],
        },
      };
      const r = spawnSync(
        process.execPath,
        [path.join(ROOT, 'node_modules/jest/bin/jest.js'), '--config', JSON.stringify(config), '--ci'],
        { cwd: ROOT, encoding: 'utf8', timeout: 90_000, env: { ...process.env, NODE_OPTIONS: '' } },
      );
      if (!fs.existsSync(pidFile)) throw new Error(`the run did not start: ${r.stderr}${r.stdout}`);
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('the test run leaked (issue 21: nothing survives the suite)');
      expect(r.stderr).toContain(`process ${pid} still alive: git`);
      expect(r.stderr).toContain('temporary folder left behind: solstice-plan-left');
      expect(r.stderr).toMatch(/Tests: +1 passed/);
      expect(alive(pid)).toBe(false);
    } finally {
      try {
        process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL');
      } catch {
        // Killed by the teardown, or never started.
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
