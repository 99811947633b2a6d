/**
 * End to end: the BUNDLED runner (scripts/bundle-runner.mjs, built in beforeAll into an empty
 * temporary folder, as a VM gets it) runs as a child process against a real gRPC log
 * service (FakeLogService) and real git repositories made in a temporary folder.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../../platform/net';
import { FakeLogService, type FakeLogServiceOptions } from './runner-fake-log-service';

const ROOT = path.resolve(__dirname, '..', '..', '..');
/** Guests run Debian's Node 18: point this at a Node 18 binary to run the bundle with it. */
const RUNNER_NODE = process.env.SOLSTICE_TEST_RUNNER_NODE || process.execPath;
const TOKEN = 'tok-3f9a1c0e-very-secret';
const JOB_ID = 'pipeline/test/job/build';

let tmp: string;
let runnerJs: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'solstice-runner-e2e-'));
  // Bundled straight into an empty temporary folder (no node_modules up the tree), which is
  // what a VM gets, and without touching dist/ that other suites may be serving.
  runnerJs = path.join(tmp, 'bin', 'runner.js');
  execFileSync(
    process.execPath,
    [path.join(ROOT, 'scripts', 'bundle-runner.mjs'), '--no-check', '--outfile', runnerJs],
    {
      cwd: ROOT,
      stdio: 'pipe',
    },
  );
}, 120_000);

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

let seq = 0;
function freshDir(name: string): string {
  const dir = path.join(tmp, `${name}-${++seq}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();
}

/** A repository with one commit per entry of `commits`; returns the commit ids. */
function makeRepo(...commits: Record<string, string>[]): { dir: string; shas: string[] } {
  const dir = freshDir('repo');
  git(dir, 'init', '-q');
  const shas: string[] = [];
  for (const files of commits) {
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), content);
    }
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '--allow-empty', '-m', `commit ${shas.length + 1}`);
    shas.push(git(dir, 'rev-parse', 'HEAD'));
  }
  return { dir, shas };
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runRunner(
  env: NodeJS.ProcessEnv,
  cwd = path.dirname(runnerJs),
  onSpawn?: (child: ChildProcess) => void,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(RUNNER_NODE, [runnerJs], {
      cwd,
      env: { PATH: process.env.PATH, HOME: tmp, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const services: FakeLogService[] = [];
afterEach(() => {
  for (const s of services.splice(0)) s.stop();
});

async function startService(
  opts: Partial<FakeLogServiceOptions> = {},
): Promise<{ svc: FakeLogService; addr: string }> {
  const svc = new FakeLogService({ token: TOKEN, ...opts });
  services.push(svc);
  return { svc, addr: await svc.start() };
}

/**
 * Runs a job. repo_url, commit_sha and workdir come from a YAML job file, the rest from the
 * environment, so both sources are exercised.
 */
async function runJob(
  repo: string,
  sha: string,
  service: Partial<FakeLogServiceOptions> & { token?: string } = {},
  extraEnv: NodeJS.ProcessEnv = {},
  onStarted?: (child: ChildProcess, svc: FakeLogService) => void,
  /** More of the job file (YAML), e.g. `steps` and `env`. */
  jobFileExtra = '',
): Promise<RunResult & { svc: FakeLogService; workdir: string }> {
  const { token = TOKEN, ...svcOpts } = service;
  const { svc, addr } = await startService(svcOpts);
  const workdir = path.join(freshDir('work'), 'checkout');
  const jobFile = path.join(freshDir('etc'), 'job.yaml');
  writeFileSync(
    jobFile,
    `repo_url: ${repo}\ncommit_sha: "${sha}"\nworkdir: ${workdir}\njob_id: overridden-by-env\n${jobFileExtra}`,
  );
  const res = await runRunner(
    {
      SOLSTICE_JOB_FILE: jobFile,
      SOLSTICE_JOB_ID: JOB_ID,
      SOLSTICE_JOB_TOKEN: token,
      ORCH_CONTACT_ADDR: addr,
      ...extraEnv,
    },
    undefined,
    onStarted && ((child) => onStarted(child, svc)),
  );
  return { ...res, svc, workdir };
}

function expectCompleteLog(svc: FakeLogService): void {
  const finish = svc.finishes[0];
  expect(svc.gaps).toEqual([]);
  const seqs = svc.lines().map((l) => l.seq);
  expect(seqs).toEqual(Array.from({ length: finish.lastSeq }, (_, i) => i + 1));
}

describe('bundled runner against a real gRPC log service', () => {
  test('a passing script: StartJob, every line in order, FinishJob EXITED 0, exit 0', async () => {
    const script = [
      'echo "hello from $SOLSTICE_JOB_ID"',
      'echo "to stderr" >&2',
      "printf 'crlf line\\r\\n'",
      'echo',
      "printf 'last line without newline'",
    ].join('\n');
    const { dir, shas } = makeRepo({ '.solstice/job.sh': script });
    const res = await runJob(dir, shas[0]);

    expect(res.code).toBe(0);
    const { svc } = res;
    expect(svc.starts).toEqual([expect.objectContaining({ jobId: JOB_ID, runnerVersion: '0.1.0' })]);
    expect(svc.starts[0].hostname).not.toBe('');
    expect(svc.finishes).toHaveLength(1);
    expect(svc.finishes[0]).toMatchObject({
      jobId: JOB_ID,
      reason: 'FINISH_REASON_EXITED',
      exitCode: 0,
      message: '',
    });
    expect(svc.finishes[0].durationMs).toBeGreaterThan(0);
    expectCompleteLog(svc);

    expect(svc.texts('LOG_STREAM_STDOUT')).toEqual([
      `hello from ${JOB_ID}`,
      'crlf line',
      '',
      'last line without newline',
    ]);
    expect(svc.texts('LOG_STREAM_STDERR')).toEqual(['to stderr']);
    const system = svc.texts('LOG_STREAM_SYSTEM');
    expect(system.some((t) => t.startsWith('$ git fetch --depth=1'))).toBe(true);
    expect(system).toContain('$ /bin/sh .solstice/job.sh');
    // job.sh is a one-step job, framed by its step markers.
    expect(system).toContain('step 1/1 ".solstice/job.sh" started');
    expect(system[system.length - 1]).toMatch(/^step 1\/1 "\.solstice\/job\.sh" succeeded in \d+\.\ds$/);
    expect(svc.finishes[0].steps).toEqual([
      expect.objectContaining({
        index: 1,
        name: '.solstice/job.sh',
        outcome: 'STEP_OUTCOME_SUCCESS',
        exitCode: 0,
        firstSeq: expect.any(Number),
        lastSeq: svc.finishes[0].lastSeq,
      }),
    ]);
    // System lines frame the script's output.
    expect(svc.lines()[0].stream).toBe('LOG_STREAM_SYSTEM');
    expect(svc.lines().every((l) => l.timeUnixMs > 1_600_000_000_000)).toBe(true);

    expect(res.stderr).toContain('[solstice-runner]');
    expect(res.stderr).not.toContain(TOKEN);
    expect(svc.lines().some((l) => l.text.includes(TOKEN))).toBe(false);
  });

  test('job file steps run in order, each between markers, with env and working directory; a failure skips the rest', async () => {
    const { dir, shas } = makeRepo({ 'sub/marker.txt': 'in sub\n', '.solstice/job.sh': 'echo not me\n' });
    const jobFile = [
      'env:',
      '  GREETING: hello',
      'steps:',
      '  - name: greet',
      '    run: echo "$GREETING from step one"',
      '  - name: in-sub',
      '    working_directory: sub',
      '    run: cat marker.txt',
      '  - name: allowed to fail',
      '    continue_on_error: true',
      '    run: |',
      '      false',
      '      echo "not reached: sh -e stops at the failing command"',
      '  - name: fails',
      '    run: exit 7',
      '  - name: never',
      '    run: echo never',
      '',
    ].join('\n');
    const res = await runJob(dir, shas[0], {}, {}, undefined, jobFile);
    expect(res.code).toBe(7);
    const { svc } = res;
    expect(svc.finishes[0]).toMatchObject({ reason: 'FINISH_REASON_EXITED', exitCode: 7 });
    expectCompleteLog(svc);
    expect(svc.texts('LOG_STREAM_STDOUT')).toEqual(['hello from step one', 'in sub']);
    const system = svc.texts('LOG_STREAM_SYSTEM');
    expect(system).toContain('step 1/5 "greet" started');
    expect(system).toContain('step 2/5 "in-sub" started in sub');
    expect(system).toContainEqual(
      expect.stringMatching(/^step 3\/5 "allowed to fail" failed with exit code 1 in .*continue-on-error/),
    );
    expect(system).toContain('step 5/5 "never" skipped: an earlier step failed');
    const steps = svc.finishes[0].steps;
    expect(steps.map((s) => [s.index, s.name, s.outcome, s.exitCode, s.continueOnError])).toEqual([
      [1, 'greet', 'STEP_OUTCOME_SUCCESS', 0, false],
      [2, 'in-sub', 'STEP_OUTCOME_SUCCESS', 0, false],
      [3, 'allowed to fail', 'STEP_OUTCOME_FAILURE', 1, true],
      [4, 'fails', 'STEP_OUTCOME_FAILURE', 7, false],
      [5, 'never', 'STEP_OUTCOME_SKIPPED', 0, false],
    ]);
    // Each step's lines are its own range: step 1's output lies inside it, the ranges do not overlap.
    const byseq = new Map(svc.lines().map((l) => [l.seq, l.text]));
    const [one, two] = steps;
    const oneTexts = Array.from({ length: one.lastSeq - one.firstSeq + 1 }, (_, i) =>
      byseq.get(one.firstSeq + i),
    );
    expect(oneTexts[0]).toBe('step 1/5 "greet" started');
    expect(oneTexts).toContain('hello from step one');
    expect(two.firstSeq).toBeGreaterThan(one.lastSeq);
    expect(steps[4]).toMatchObject({ firstSeq: 0, lastSeq: 0, durationMs: 0 });
    expect(steps[0].durationMs).toBeGreaterThanOrEqual(0);
    // The step scripts lived outside the checkout and are gone.
    expect(readdirSync(path.dirname(res.workdir))).toEqual(['checkout']);
    // Progress went out as it happened, in order, all before FinishJob: a start (no outcome)
    // and an end per step that ran, the end of a skipped one.
    expect(svc.stepReports.map((r) => [r.step?.index, r.step?.outcome, r.total, r.finishesBefore])).toEqual([
      [1, 'STEP_OUTCOME_UNSPECIFIED', 5, 0],
      [1, 'STEP_OUTCOME_SUCCESS', 5, 0],
      [2, 'STEP_OUTCOME_UNSPECIFIED', 5, 0],
      [2, 'STEP_OUTCOME_SUCCESS', 5, 0],
      [3, 'STEP_OUTCOME_UNSPECIFIED', 5, 0],
      [3, 'STEP_OUTCOME_FAILURE', 5, 0],
      [4, 'STEP_OUTCOME_UNSPECIFIED', 5, 0],
      [4, 'STEP_OUTCOME_FAILURE', 5, 0],
      [5, 'STEP_OUTCOME_SKIPPED', 5, 0],
    ]);
    expect(svc.stepReports[0].step).toMatchObject({ name: 'greet', firstSeq: one.firstSeq });
    expect(svc.stepReports[1].step).toEqual(steps[0]);
  });

  test('a log service without ReportStep: the job runs and finishes as before', async () => {
    const { dir, shas } = makeRepo({ README: 'steps come from the job file\n' });
    const res = await runJob(
      dir,
      shas[0],
      { noStepReports: true },
      {},
      undefined,
      'steps:\n  - name: one\n    run: echo one\n  - name: two\n    run: echo two\n',
    );
    expect(res.code).toBe(0);
    expect(res.svc.finishes[0]).toMatchObject({ reason: 'FINISH_REASON_EXITED', exitCode: 0 });
    expect(res.svc.finishes[0].steps.map((s) => s.outcome)).toEqual([
      'STEP_OUTCOME_SUCCESS',
      'STEP_OUTCOME_SUCCESS',
    ]);
    expect(res.svc.texts('LOG_STREAM_STDOUT')).toEqual(['one', 'two']);
    // Said once on the runner's stderr, not in the job's log.
    expect(res.stderr.match(/step progress not reported/g)).toHaveLength(1);
  });

  test('the script exit code is reported and becomes the runner exit code', async () => {
    const { dir, shas } = makeRepo({ '.solstice/job.sh': 'echo failing\nexit 3\n' });
    const res = await runJob(dir, shas[0]);
    expect(res.code).toBe(3);
    expect(res.svc.finishes[0]).toMatchObject({ reason: 'FINISH_REASON_EXITED', exitCode: 3 });
    expect(res.svc.texts('LOG_STREAM_STDOUT')).toEqual(['failing']);
  });

  test('a script killed by a signal exits 128 + signo', async () => {
    const { dir, shas } = makeRepo({ '.solstice/job.sh': 'echo before\nkill -TERM $$\necho after\n' });
    const res = await runJob(dir, shas[0]);
    expect(res.code).toBe(143);
    expect(res.svc.finishes[0]).toMatchObject({ reason: 'FINISH_REASON_EXITED', exitCode: 143 });
    expect(res.svc.texts('LOG_STREAM_SYSTEM')).toContainEqual(
      expect.stringMatching(/^step 1\/1 "\.solstice\/job\.sh" was killed by SIGTERM \(exit code 143\) in /),
    );
  });

  test('SIGTERM to the runner reaches the script; the job is reported interrupted, not failed', async () => {
    const { dir, shas } = makeRepo({ '.solstice/job.sh': 'echo started\nsleep 30\necho never\n' });
    const res = await runJob(dir, shas[0], {}, {}, (child, svc) => {
      const poll = setInterval(() => {
        if (svc.texts('LOG_STREAM_STDOUT').includes('started')) {
          clearInterval(poll);
          child.kill('SIGTERM');
        }
      }, 20);
      child.on('exit', () => clearInterval(poll));
    });
    expect(res.code).toBe(143);
    // The machine is going away: the 143 is what the signal did, not the script's own failure.
    expect(res.svc.finishes[0]).toMatchObject({ reason: 'FINISH_REASON_INTERRUPTED', exitCode: 143 });
    expect(res.svc.finishes[0].steps).toEqual([
      expect.objectContaining({ index: 1, outcome: 'STEP_OUTCOME_INTERRUPTED', exitCode: 143 }),
    ]);
    expect(res.svc.texts('LOG_STREAM_STDOUT')).toEqual(['started']);
    expect(res.svc.texts('LOG_STREAM_SYSTEM')).toContain(
      'runner received SIGTERM; passing it to the job script',
    );
    expectCompleteLog(res.svc);
  });

  test('the runner heartbeats while a step prints nothing, at the job file interval', async () => {
    const { dir, shas } = makeRepo({ '.solstice/job.sh': 'sleep 1.5\n' });
    const res = await runJob(dir, shas[0], {}, {}, undefined, 'heartbeat_interval_ms: "100"\n');
    expect(res.code).toBe(0);
    // 1.5 s of silence at 100 ms: well over the few a slow machine could miss.
    expect(res.svc.heartbeats).toBeGreaterThanOrEqual(5);
  });

  const TEN_THOUSAND = [
    'i=0',
    'while [ $i -lt 10000 ]; do',
    '  if [ $((i % 3)) -eq 0 ]; then echo "err $i" >&2; else echo "out $i"; fi',
    '  i=$((i + 1))',
    'done',
  ].join('\n');

  function expectTenThousand(svc: FakeLogService): void {
    expectCompleteLog(svc);
    const out = svc.texts('LOG_STREAM_STDOUT');
    const err = svc.texts('LOG_STREAM_STDERR');
    const all = Array.from({ length: 10_000 }, (_, i) => i);
    expect(out).toEqual(all.filter((i) => i % 3 !== 0).map((i) => `out ${i}`));
    expect(err).toEqual(all.filter((i) => i % 3 === 0).map((i) => `err ${i}`));
  }

  test('10,000 interleaved stdout/stderr lines: each stored once, per-stream order kept, seqs dense', async () => {
    const { dir, shas } = makeRepo({ '.solstice/job.sh': TEN_THOUSAND });
    const res = await runJob(dir, shas[0]);
    expect(res.code).toBe(0);
    expectTenThousand(res.svc);
    // Nothing was sent twice on a healthy stream.
    expect(res.svc.received).toHaveLength(res.svc.stored.size);
    expect(res.svc.streamCalls).toBe(1);
  });

  test('the server dropping the stream: the runner reconnects and resends only unacknowledged lines', async () => {
    const { dir, shas } = makeRepo({ '.solstice/job.sh': TEN_THOUSAND });
    const res = await runJob(dir, shas[0], { dropFirstStreamAfterBatches: 3 });
    expect(res.code).toBe(0);
    const { svc } = res;
    expect(svc.streamCalls).toBeGreaterThanOrEqual(2);
    expect(svc.ackedAtDrop).toBeGreaterThan(0);
    expectTenThousand(svc);
    // Acknowledged lines are never resent: the later calls start right after the last ack.
    const later = svc.received.filter((r) => r.call > 1).map((r) => r.line.seq);
    expect(Math.min(...later)).toBe((svc.ackedAtDrop as number) + 1);
    expect(new Set(later).size).toBe(later.length);
    expect(res.stderr).toMatch(
      /log stream interrupted \(UNAVAILABLE: log service going away \(test\)\); reconnecting/,
    );
  });

  test('the runner continues numbering after lines a previous runner stored', async () => {
    const { dir, shas } = makeRepo({ '.solstice/job.sh': 'echo resumed\n' });
    const res = await runJob(dir, shas[0], { persistedThroughSeq: 5 });
    expect(res.code).toBe(0);
    const seqs = res.svc.lines().map((l) => l.seq);
    expect(seqs[0]).toBe(6);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 6));
    expect(res.svc.finishes[0].lastSeq).toBe(seqs[seqs.length - 1]);
  });

  test('an unknown commit: FinishJob CHECKOUT_FAILED naming the repository and the commit', async () => {
    const { dir } = makeRepo({ '.solstice/job.sh': 'echo hi\n' });
    const unknown = 'deadbeef'.repeat(5);
    const res = await runJob(dir, unknown);
    expect(res.code).toBe(1);
    const finish = res.svc.finishes[0];
    expect(finish.reason).toBe('FINISH_REASON_CHECKOUT_FAILED');
    expect(finish.message).toContain(unknown);
    expect(finish.message).toContain(dir);
    expectCompleteLog(res.svc);
    expect(res.svc.texts('LOG_STREAM_SYSTEM')).toContain(finish.message);
  });

  test('an unreachable repository: retried for the window StartJob gave, then CHECKOUT_UNAVAILABLE (an error)', async () => {
    const port = await freePort(); // nothing listens there
    const url = `http://127.0.0.1:${port}/o/r.git`;
    const started = Date.now();
    const res = await runJob(url, 'ab'.repeat(20), { checkoutRetryForMs: 2500 });
    expect(res.code).not.toBe(0);
    const finish = res.svc.finishes[0];
    expect(finish.reason).toBe('FINISH_REASON_CHECKOUT_UNAVAILABLE');
    expect(finish.message).toMatch(/could not fetch repository http:\/\/127\.0\.0\.1:\d+\/o\/r\.git/);
    const system = res.svc.texts('LOG_STREAM_SYSTEM');
    expect(system.filter((l) => l.startsWith('The repository is unreachable')).length).toBeGreaterThanOrEqual(
      1,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expectCompleteLog(res.svc);
  });

  test('a repository that comes back within the window is checked out', async () => {
    const { dir, shas } = makeRepo({ '.solstice/job.sh': 'echo "came back"\n' });
    const port = await freePort();
    let daemon: ChildProcess | undefined;
    // The server starts only once the runner tried (and failed) at least once.
    const later = setTimeout(() => {
      daemon = spawn(
        'git',
        [
          'daemon',
          '--listen=127.0.0.1',
          `--port=${port}`,
          '--reuseaddr',
          '--export-all',
          `--base-path=${dir}`,
        ],
        { stdio: 'ignore' },
      );
    }, 2500);
    try {
      const res = await runJob(`git://127.0.0.1:${port}/`, shas[0], { checkoutRetryForMs: 60_000 });
      expect(res.svc.finishes[0].reason).toBe('FINISH_REASON_EXITED');
      expect(res.code).toBe(0);
      expect(
        res.svc.texts('LOG_STREAM_SYSTEM').some((l) => l.startsWith('The repository is unreachable')),
      ).toBe(true);
      expect(res.svc.texts('LOG_STREAM_STDOUT')).toEqual(['came back']);
    } finally {
      clearTimeout(later);
      const d = daemon as ChildProcess | undefined;
      if (d && d.exitCode === null) {
        const exited = new Promise((resolve) => d.once('exit', resolve));
        d.kill();
        await exited;
      }
    }
  });

  test('a server that refuses fetching by commit id: falls back to fetching all refs', async () => {
    // Protocol v0 without allowReachableSHA1InWant refuses a commit that is not a ref tip.
    const { dir, shas } = makeRepo({ '.solstice/job.sh': 'echo "first commit"\n' }, { 'other.txt': 'x' });
    const res = await runJob(
      dir,
      shas[0],
      {},
      { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'protocol.version', GIT_CONFIG_VALUE_0: '0' },
    );
    expect(res.code).toBe(0);
    const system = res.svc.texts('LOG_STREAM_SYSTEM');
    expect(system).toContain('The server did not serve the commit by id; fetching all refs instead');
    expect(res.svc.texts('LOG_STREAM_STDOUT')).toEqual(['first commit']);
    expect(git(res.workdir, 'rev-parse', 'HEAD')).toBe(shas[0]);
  });

  test('no job.sh and no workflow.kdl: NO_JOB_DEFINITION saying what to add', async () => {
    const { dir, shas } = makeRepo({ 'README.md': 'nothing to run\n' });
    const res = await runJob(dir, shas[0]);
    expect(res.code).toBe(1);
    expect(res.svc.finishes[0].reason).toBe('FINISH_REASON_NO_JOB_DEFINITION');
    expect(res.svc.finishes[0].message).toMatch(/add \.solstice\/job\.sh/);
  });

  test('only workflow.kdl and no steps given: NO_JOB_DEFINITION pointing at pipelines', async () => {
    const { dir, shas } = makeRepo({ '.solstice/workflow.kdl': 'workflow "ci" {}\n' });
    const res = await runJob(dir, shas[0]);
    expect(res.svc.finishes[0].reason).toBe('FINISH_REASON_NO_JOB_DEFINITION');
    expect(res.svc.finishes[0].message).toMatch(
      /no steps: run the commit as a pipeline.*or add \.solstice\/job\.sh/,
    );
  });

  test('the script sees the job variables and CI=true but never the token', async () => {
    const script = [
      'env | grep -E "^(SOLSTICE_|CI=)" | sort',
      'if [ -n "${SOLSTICE_JOB_TOKEN+set}" ]; then echo TOKEN_VISIBLE; fi',
      'cat /proc/$$/environ 2>/dev/null | tr "\\0" "\\n" | grep -c JOB_TOKEN || true',
    ].join('\n');
    const { dir, shas } = makeRepo({ '.solstice/job.sh': script });
    const res = await runJob(dir, shas[0]);
    expect(res.code).toBe(0);
    const out = res.svc.texts('LOG_STREAM_STDOUT');
    expect(out).toContain('CI=true');
    expect(out).toContain(`SOLSTICE_JOB_ID=${JOB_ID}`);
    expect(out).toContain(`SOLSTICE_COMMIT_SHA=${shas[0]}`);
    expect(out).toContain(`SOLSTICE_WORKDIR=${res.workdir}`);
    expect(out).not.toContain('TOKEN_VISIBLE');
    expect(out[out.length - 1]).toBe('0');
    expect(res.svc.lines().some((l) => l.text.includes(TOKEN))).toBe(false);
  });

  test('a rejected token (UNAUTHENTICATED): clear message, non-zero exit, no job run', async () => {
    const { dir, shas } = makeRepo({ '.solstice/job.sh': 'touch ran\n' });
    const res = await runJob(dir, shas[0], { token: 'wrong-token' });
    expect(res.code).toBe(77);
    expect(res.stderr).toMatch(/rejected the token of job .*UNAUTHENTICATED: invalid job token/);
    expect(res.stderr).not.toContain('wrong-token');
    expect(res.svc.authFailures).toEqual(['StartJob']);
    expect(res.svc.finishes).toEqual([]);
  });

  test('an unreachable log service: retries, then gives up with exit code 75', async () => {
    const { svc, addr } = await startService();
    svc.stop(); // a port that was just free again
    const emptyJobFile = path.join(freshDir('etc'), 'job.yaml');
    writeFileSync(emptyJobFile, '');
    const res = await runRunner({
      SOLSTICE_JOB_FILE: emptyJobFile,
      SOLSTICE_JOB_ID: JOB_ID,
      SOLSTICE_JOB_TOKEN: TOKEN,
      ORCH_CONTACT_ADDR: addr,
      SOLSTICE_REPO_URL: '/nonexistent',
      SOLSTICE_COMMIT_SHA: 'abcdef1',
      SOLSTICE_RUNNER_RETRY_FOR: '2s',
    });
    expect(res.code).toBe(75);
    expect(res.stderr).toMatch(/StartJob: log service unavailable \(UNAVAILABLE/);
    expect(res.stderr).toMatch(/gave up on StartJob: the log service at 127\.0\.0\.1:\d+ was unreachable/);
  });

  test('a named job file that does not exist: exit code 2', async () => {
    const res = await runRunner({ SOLSTICE_JOB_FILE: path.join(tmp, 'no-such-job.yaml') });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('cannot read job file');
  });

  test('a job file with a wrong field: the bundled schema names the file and the field, exit code 2', async () => {
    const jobFile = path.join(freshDir('etc'), 'job.yaml');
    writeFileSync(jobFile, 'job_id: x\nsteps:\n  - run: a\n  - run: b\n    continue_on_error: maybe\n');
    const res = await runRunner({ SOLSTICE_JOB_FILE: jobFile }, os.tmpdir());
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(
      `error: job file ${jobFile}: steps[1].continue_on_error: step 2 continue_on_error must be true or false`,
    );
  });

  test('missing job settings: a clear error and exit code 2, standalone (no node_modules)', async () => {
    const res = await runRunner({ SOLSTICE_JOB_FILE: '', SOLSTICE_JOB_ID: 'x' }, os.tmpdir());
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/\[solstice-runner\] error: missing job settings: SOLSTICE_JOB_TOKEN/);
    expect(res.stderr).not.toMatch(/Cannot find module/);
  });
});
