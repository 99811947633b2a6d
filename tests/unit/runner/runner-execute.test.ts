import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backoffDelay } from '../../../runner/backoff';
import { redactUrlsInText as redactUrl } from '../../../model/redact-url';
import { exitCodeOf, jobScriptEnv, runJobScript } from '../../../runner/execute';
import { LogBuffer } from '../../../runner/log/buffer';
import { jobContext } from '../../support/job-context';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-exec-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

const ctx = jobContext({
  token: 'secret-token',
  repoUrl: 'https://user:pw@example.com/r.git',
  commitSha: 'abcdef1',
  workdir: '/w',
});

describe('job script execution', () => {
  test('pauses reading while the log buffer is over its limit, resumes after acks', async () => {
    // ~2 MiB of output against a 64 KiB limit that is only relieved by acks.
    const s = script('flood.sh', 'i=0; while [ $i -lt 2000 ]; do printf "%01000d\\n" $i; i=$((i+1)); done\n');
    const buffer = new LogBuffer({ firstSeq: 1, highWaterBytes: 64 * 1024, lowWaterBytes: 16 * 1024 });
    const logs: string[] = [];
    const run = runJobScript({ scriptPath: s, cwd: dir, env: process.env, buffer, log: (t) => logs.push(t) });

    let maxUnacked = 0;
    let pauses = 0;
    let finished = false;
    void run.done.then(() => (finished = true));
    while (!finished) {
      await new Promise((r) => setTimeout(r, 5));
      maxUnacked = Math.max(maxUnacked, buffer.unackedBytes);
      if (buffer.isPaused) {
        pauses++;
        buffer.ack(buffer.lastSeq); // the "server" catches up
      }
    }
    const result = await run.done;
    expect(result).toEqual({ exitCode: 0, signal: null });
    expect(pauses).toBeGreaterThan(0);
    // Reading stopped near the limit. Past it can come what each pipe had already read: the
    // chunk being split into lines and what the paused socket buffered (one 64 KiB read each,
    // ~70 KiB counted with per-line overhead). Seen here up to 217 KiB; 2 MiB without pausing.
    expect(maxUnacked).toBeLessThan(64 * 1024 + 4 * 70 * 1024);
    expect(buffer.lastSeq).toBe(2000);
  });

  test('a signal-killed script reports 128 + signo', async () => {
    const run = runJobScript({
      scriptPath: script('killed.sh', 'kill -KILL $$\n'),
      cwd: dir,
      env: process.env,
      buffer: new LogBuffer({ firstSeq: 1 }),
      log: () => undefined,
    });
    expect(await run.done).toEqual({ exitCode: 137, signal: 'SIGKILL' });
    expect(exitCodeOf(null, 'SIGTERM')).toBe(143);
    expect(exitCodeOf(0, null)).toBe(0);
  });

  test('stops background processes left running and does not wait for their open pipes', async () => {
    const marker = path.join(dir, 'leftover-ran');
    const run = runJobScript({
      scriptPath: script('bg.sh', `(sleep 3; touch ${marker}) &\necho started\n`),
      cwd: dir,
      env: process.env,
      buffer: new LogBuffer({ firstSeq: 1 }),
      log: () => undefined,
      idleGraceMs: 500,
    });
    const t0 = Date.now();
    expect((await run.done).exitCode).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2500);
    await new Promise((r) => setTimeout(r, 3500));
    expect(existsSync(marker)).toBe(false);
  }, 15_000);

  test('kill() reaches the whole process group', async () => {
    const run = runJobScript({
      scriptPath: script('long.sh', 'sleep 30 & wait\n'),
      cwd: dir,
      env: process.env,
      buffer: new LogBuffer({ firstSeq: 1 }),
      log: () => undefined,
    });
    await new Promise((r) => setTimeout(r, 200));
    run.kill('SIGTERM');
    expect((await run.done).exitCode).toBe(143);
  });

  test('the script environment has the job variables and CI, never the token or URL credentials', () => {
    const env = jobScriptEnv({ PATH: '/bin', SOLSTICE_JOB_TOKEN: 'secret-token', KEEP: '1' }, ctx);
    expect(env).toEqual({
      PATH: '/bin',
      KEEP: '1',
      CI: 'true',
      SOLSTICE_JOB_ID: 'j',
      SOLSTICE_REPO_URL: 'https://***@example.com/r.git',
      SOLSTICE_COMMIT_SHA: 'abcdef1',
      SOLSTICE_WORKDIR: '/w',
    });
  });
});

describe('helpers', () => {
  test('redactUrl hides credentials wherever a URL appears', () => {
    expect(redactUrl('https://x-access-token:abc@github.com/o/r')).toBe('https://***@github.com/o/r');
    expect(redactUrl("fatal: unable to access 'https://u:p@h/r/': 403")).toBe(
      "fatal: unable to access 'https://***@h/r/': 403",
    );
    expect(redactUrl('/srv/git/repo')).toBe('/srv/git/repo');
    expect(redactUrl('git@github.com:o/r.git')).toBe('git@github.com:o/r.git');
  });

  test('backoff grows exponentially, is capped, and keeps at least half a step', () => {
    const policy = { initialMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 1)).toBe(800);
    expect(backoffDelay(10, policy, () => 1)).toBe(1000);
    expect(backoffDelay(100, policy, () => 0)).toBe(500);
  });
});
