/** The suite's own leak check (tests/support/leak-check.ts) sees a leaked git of its run, and only of its run. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engineTempLeftovers, leakedProcesses, RUN_MARKER_ENV } from '../../support/leak-check';

test('a git process of the run is found by its marker; one of another run is not', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-leak-check-'));
  const start = (run: string) =>
    spawn('bash', ['-c', 'exec -a git sleep 60'], {
      env: { ...process.env, [RUN_MARKER_ENV]: run },
      stdio: 'ignore',
    });
  const ours = start('run-ours');
  const theirs = start('run-theirs');
  try {
    let found: number[] = [];
    for (let i = 0; i < 50 && !found.includes(ours.pid!); i++) {
      await new Promise((r) => setTimeout(r, 100));
      found = leakedProcesses('run-ours', tmp).map((p) => p.pid);
    }
    expect(found).toContain(ours.pid);
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
