/**
 * The CLI in daily use, as real processes against a real worker: following a matrix pipeline,
 * honest exit codes and messages (one table, a row per case the issue saw), and piped output
 * that is never cut, reordered or dropped for a slow reader.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI, cliEnv, runCli, type CliResult } from '../../support/cli';
import { makeRepo } from '../../support/git-repo';
import { harnessWithWorkerForFile, type Harness } from '../../support/harness';

let h: Harness;
harnessWithWorkerForFile((harness) => (h = harness));

function solstice(args: string[]): Promise<CliResult> {
  return runCli(args, cliEnv(h.cfg), 300_000);
}

/** `solstice <args> | <consumer>` through a real shell pipe; stdout is the consumer's. */
async function piped(args: string[], consumer: string): Promise<CliResult> {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  try {
    const { stdout, stderr } = await promisify(execFile)('sh', ['-c', `${quoted} | ${consumer}`], {
      env: cliEnv(h.cfg),
      timeout: 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    return err as CliResult;
  }
}

const id = (re: RegExp, text: string): string => {
  const m = re.exec(text);
  if (!m) throw new Error(`no ${re} in:\n${text}`);
  return m[1];
};

let pipelineId: string;
let followed: CliResult;
let lintJob: string;
let bigJob: string;

beforeAll(async () => {
  // The two matrix instances each wait until both have started (and then long enough for the
  // runner to ship the start lines), so their lines can only come out interleaved if the
  // follower prints jobs side by side, not one after another.
  const meet = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-meet-'));
  const repo = makeRepo({
    '.solstice/workflow.kdl': `
      job "lint" {
        step "count" run="seq 1 30000"
        artifacts "out.txt"
        step "write" run="echo built > out.txt"
      }
      job "test" {
        matrix { node "18" "20" }
        step "meet" run="echo start $MATRIX_NODE; touch ${meet}/$MATRIX_NODE; while [ ! -e ${meet}/18 ] || [ ! -e ${meet}/20 ]; do sleep 0.1; done; sleep 3; echo end $MATRIX_NODE"
      }
      job "broken" {
        needs "lint"
        step "fails" run="echo about to fail; exit 7"
      }
    `,
  });
  followed = await solstice(['enqueue', '--direct', '--repo', repo.dir, '--follow']);
  pipelineId = id(/^pipeline ([0-9a-f-]{36})$/m, followed.stdout);
  lintJob = id(/^lint +\| job ([0-9a-f-]{36})$/m, followed.stdout);
  bigJob = lintJob;
  // Seeded rows: 10,000 artifacts through gRPC would take minutes here, and what is tested is
  // how `artifacts list` writes them to a pipe.
  await h.db.artifact.createMany({
    data: Array.from({ length: 10_000 }, (_, i) => ({
      jobId: lintJob,
      path: `many/file-${String(i).padStart(5, '0')}.txt`,
      size: BigInt(i),
      sha256: 'a'.repeat(64),
    })),
  });
}, 600_000);

test('enqueue -f interleaves the lines of parallel jobs, each prefixed with its job name, and ends with a table', () => {
  expect(followed.code).toBe(1);
  const lines = followed.stdout.split('\n');
  const at = (text: string) => lines.findIndex((l) => l === text);
  const starts = [at('test[node=18] | start 18'), at('test[node=20] | start 20')];
  const ends = [at('test[node=18] | end 18'), at('test[node=20] | end 20')];
  for (const i of [...starts, ...ends]) expect(i).toBeGreaterThan(-1);
  // Both started before either ended: the two jobs' lines interleave.
  expect(Math.max(...starts)).toBeLessThan(Math.min(...ends));
  expect(followed.stdout).toMatch(/^broken +\| about to fail$/m);
  expect(followed.stdout).toMatch(/^broken +\| failure \(exit code 7\): job script exited with code 7$/m);
  expect(followed.stdout).toMatch(/^JOB +STATE +EXIT +DURATION +ID$/m);
  expect(followed.stdout).toMatch(/^test\[node=18\] +success +0 /m);
  expect(followed.stdout).toMatch(/^broken +failure +7 /m);
});

test('jobs and status name the jobs, matrix values included; <pipeline>/<job name> is a reference', async () => {
  const jobs = await solstice(['jobs', '--limit', '10']);
  expect(jobs.code).toBe(0);
  expect(jobs.stdout).toMatch(/^ID +STATE +JOB +REPO@COMMIT/m);
  expect(jobs.stdout).toMatch(/ test\[node=20\] /);
  const status = await solstice(['status', `${pipelineId.slice(0, 8)}/test[node=20]`]);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/^name +test\[node=20\]$/m);
  const failedOnly = await solstice(['logs', pipelineId, '--failed']);
  expect(failedOnly.stdout).toContain('about to fail');
  expect(failedOnly.stdout).not.toContain('start 18');
  const step = await solstice(['logs', pipelineId, 'lint', '--step', 'write']);
  expect(step.code).toBe(0);
  expect(step.stdout).not.toMatch(/^30000$/m);
});

type Case = {
  seen: string;
  args: () => string[];
  code: number;
  stdout?: RegExp;
  stderr?: RegExp;
};

const CASES: Case[] = [
  {
    seen: 'cancel on a finished run',
    args: () => ['cancel', pipelineId],
    code: 2,
    stderr: /error: pipeline [0-9a-f-]{36} already ended failure; there is nothing to cancel/,
  },
  {
    seen: 'logs of a failed job without --exit-status',
    args: () => ['logs', `${pipelineId}/broken`],
    code: 0,
    stdout: /about to fail/,
  },
  {
    seen: 'logs --exit-status of a failed job',
    args: () => ['logs', `${pipelineId}/broken`, '--exit-status'],
    code: 1,
    stdout: /about to fail/,
  },
  {
    seen: 'logs -f --exit-status of a failed pipeline',
    args: () => ['logs', '-f', pipelineId, '--exit-status'],
    code: 1,
    stdout: /^broken +\| about to fail$/m,
  },
  {
    seen: 'status of something that is no id',
    args: () => ['status', 'zzz'],
    code: 2,
    stderr: /error: "zzz" is not a pipeline or job reference\nhint: .*<pipeline>\/<job name>/,
  },
  {
    seen: 'an unknown prefix exits as a malformed one does',
    args: () => ['status', 'ffff0000'],
    code: 2,
    stderr: /error: no pipeline or job id starts with "ffff0000"/,
  },
  {
    seen: 'logs <pipeline> prints its jobs',
    args: () => ['logs', pipelineId],
    code: 0,
    stdout: /^test\[node=18\] \| start 18$/m,
  },
  {
    seen: 'a job name the pipeline does not have',
    args: () => ['logs', pipelineId, 'tset'],
    code: 2,
    stderr: /has no job "tset"\nhint: +its jobs: lint, test\[node=18\], test\[node=20\], broken/,
  },
  {
    seen: 'artifacts get -o into a missing folder',
    args: () => ['artifacts', 'get', `${pipelineId}/lint`, 'out.txt', '-o', '/missing/dir/x'],
    code: 2,
    stderr: /error: cannot write \/missing\/dir\/x: folder \/missing\/dir does not exist/,
  },
  {
    seen: 'artifacts of a pipeline',
    args: () => ['artifacts', 'list', pipelineId],
    code: 2,
    stderr: /is a pipeline; name one of its jobs/,
  },
  {
    seen: 'jobs --limit abc',
    args: () => ['jobs', '--limit', 'abc'],
    code: 2,
    stderr: /--limit must be a whole number of at least 1, got "abc"/,
  },
  {
    seen: 'artifacts --help',
    args: () => ['artifacts', '--help'],
    code: 0,
    stdout: /solstice artifacts list +List/,
  },
  {
    seen: 'a mistyped command',
    args: () => ['stauts'],
    code: 2,
    stderr: /^error: unknown command "stauts"\nhint: +did you mean `solstice status`\?\n$/,
  },
  {
    seen: 'top-level --help',
    args: () => ['--help'],
    code: 0,
    stdout: /^ {2}solstice status +Show a pipeline/m,
  },
  {
    seen: 'up takes --temporal-ui-port',
    args: () => ['up', '--temporal-ui-port', '9999', '--help'],
    code: 0,
    stdout: /--temporal-ui-port/,
  },
];

test.each(CASES)('$seen: exit $code', async (c) => {
  const r = await solstice(c.args());
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: c.code, stderr: expect.anything() });
  if (c.stdout) expect(r.stdout).toMatch(c.stdout);
  if (c.stderr) expect(r.stderr).toMatch(c.stderr);
  expect(r.stderr).not.toMatch(/\n\s+at |This is a bug/);
});

test('top-level --help is short', async () => {
  const r = await solstice(['--help']);
  expect(r.stdout.length).toBeLessThan(3000);
});

test('a reader that stops early (| head -2) ends the CLI quietly, without an EPIPE stack', async () => {
  const r = await piped(['logs', lintJob], 'head -2');
  expect(r.stdout.split('\n').length).toBe(3);
  expect(r.stderr).toBe('');
});

test('a log of several pages reaches a slow reader whole and in order (a page a write, waiting for the pipe)', async () => {
  // `seq 1 30000` is 15 pages of the log store and 169 KB, more than a pipe holds; the reader
  // starts only after the CLI has filled the pipe, so the CLI waits for it to drain.
  const r = await piped(['logs', lintJob], '{ sleep 2; cat; }');
  expect(r.stderr).toBe('');
  const counted = r.stdout.split('\n').filter((l) => /^\d+$/.test(l));
  expect(counted).toEqual(Array.from({ length: 30_000 }, (_, i) => String(i + 1)));

  // Following the whole pipeline takes the same care: every job's pages, each job's in order.
  const f = await piped(['logs', pipelineId, '--follow'], '{ sleep 2; cat; }');
  expect(f.stderr).toBe('');
  const lint = f.stdout.split('\n').filter((l) => /^lint +\| \d+$/.test(l));
  expect(lint.map((l) => l.replace(/^lint +\| /, ''))).toEqual(counted);
  expect(f.stdout).toMatch(/about to fail/);
});

test('piped output is never cut: logs | wc -c, artifacts list | wc -l, workflow validate --json | JSON.parse, 20 of 20 runs', async () => {
  const logBytes = (await solstice(['logs', bigJob])).stdout.length;
  expect(logBytes).toBeGreaterThan(168_000);
  const kdl = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-kdl-')), 'workflow.kdl');
  fs.writeFileSync(
    kdl,
    // 200 jobs, under the 256 a file may have (docs/limits.md), make a JSON report of ~100 KB.
    Array.from({ length: 200 }, (_, i) => `job "j${i}" { step "s" run="echo ${'x'.repeat(400)}" }\n`).join(
      '',
    ),
  );
  for (let run = 0; run < 20; run++) {
    const [logs, artifacts, json] = await Promise.all([
      piped(['logs', bigJob], 'wc -c'),
      piped(['artifacts', 'list', bigJob], 'wc -l'),
      piped(
        ['workflow', 'validate', '--json', kdl],
        `node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).workflow.jobs.length))'`,
      ),
    ]);
    expect({ run, logs: Number(logs.stdout.trim()) }).toEqual({ run, logs: logBytes });
    expect({ run, artifacts: Number(artifacts.stdout.trim()) }).toEqual({ run, artifacts: 10_001 });
    expect({ run, json: json.stdout.trim() }).toEqual({ run, json: '200' });
  }
}, 900_000);
