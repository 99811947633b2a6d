/**
 * Local runs that behave like forge events, and pipelines by number, as real `solstice`
 * processes against a real worker: `enqueue --event push --branch B` meets `when` filters and
 * cancels the branch's older push pipelines; pipelines are listed and named as `<repo>#<n>`;
 * `enqueue -f` says within seconds when no worker polls its task queue, and keeps waiting.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI, cliEnv, runCli, type CliResult } from '../../support/cli';
import { makeRepo } from '../../support/git-repo';
import { harnessWithWorkerForFile, type Harness } from '../../support/harness';
import { gatePath, waitFor } from '../../support/wait';

let h: Harness;
harnessWithWorkerForFile((harness) => (h = harness));

function solstice(args: string[]): Promise<CliResult> {
  return runCli(args, cliEnv(h.cfg), 300_000);
}

const pipelineIdOf = (r: CliResult): string => {
  const m = /^pipeline ([0-9a-f-]{36})$/m.exec(r.stdout);
  if (!m) throw new Error(`no pipeline id in:\n${r.stdout}\n${r.stderr}`);
  return m[1];
};

const filtered = makeRepo({
  '.solstice/workflow.kdl': `
    job "always" {
      step "s" run="echo always"
    }
    job "release-push" {
      when {
        events "push"
        branches "release/*"
      }
      step "s" run="echo release push"
    }
    job "by-hand" {
      when {
        events "manual"
      }
      step "s" run="echo by hand"
    }
  `,
});
const repoName = path.basename(filtered.dir);

test('--event push --branch B runs as a push to B: when filters see both, and the ref is refs/heads/B', async () => {
  const r = await solstice([
    'enqueue',
    '--direct',
    '--repo',
    filtered.dir,
    '--commit',
    filtered.sha,
    '--event',
    'push',
    '--branch',
    'release/1',
    '--follow',
  ]);
  expect(r.code).toBe(0);
  const p = await h.pipelines.getPipeline(pipelineIdOf(r));
  expect({ event: p?.event, ref: p?.ref }).toEqual({ event: 'push', ref: 'refs/heads/release/1' });
  const states = Object.fromEntries((await h.pipelines.listJobs(p!.id)).map((j) => [j.name, j.state]));
  expect(states).toEqual({ always: 'success', 'release-push': 'success', 'by-hand': 'skipped' });

  // By default a run by hand: the push job is skipped, the manual one runs.
  const manual = await solstice([
    'enqueue',
    '--direct',
    '--repo',
    filtered.dir,
    '--commit',
    'main',
    '--follow',
  ]);
  expect(manual.code).toBe(0);
  const byHand = await h.pipelines.listJobs(pipelineIdOf(manual));
  expect(Object.fromEntries(byHand.map((j) => [j.name, j.state]))).toEqual({
    always: 'success',
    'release-push': 'skipped',
    'by-hand': 'success',
  });
  // `--commit main` (a branch name) records that branch.
  expect((await h.pipelines.getPipeline(pipelineIdOf(manual)))?.ref).toBe('refs/heads/main');
}, 300_000);

test('pipelines carry per-repository numbers, listed and accepted as <repo>#<n> and <repo>#<n>/<job>', async () => {
  const list = await solstice(['pipelines', '--limit', '50']);
  expect(list.code).toBe(0);
  expect(list.stdout).toMatch(new RegExp(`^[0-9a-f-]{36}  ${repoName}#1 +success `, 'm'));
  expect(list.stdout).toMatch(new RegExp(`^[0-9a-f-]{36}  ${repoName}#2 +success `, 'm'));

  const status = await solstice(['status', `${repoName}#2`]);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(new RegExp(`^pipeline +${repoName}#2  [0-9a-f-]{36}$`, 'm'));
  expect(status.stdout).toMatch(/^ref +refs\/heads\/main$/m);
  // By path, and without the repository when only one has that number.
  const byPath = await solstice(['status', `${filtered.dir}#1`]);
  expect(byPath.stdout).toMatch(/^ref +refs\/heads\/release\/1$/m);
  const logs = await solstice(['logs', `#1/release-push`]);
  expect(logs.code).toBe(0);
  expect(logs.stdout).toContain('release push');
  const job = await solstice(['status', `${repoName}#1/always`]);
  expect(job.stdout).toMatch(new RegExp(`^pipeline +${repoName}#1  [0-9a-f-]{36} \\(success\\)$`, 'm'));

  const missing = await solstice(['status', `${repoName}#99`]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(
    new RegExp(`^error: no pipeline #99 of a repository "${repoName}"\\nhint: +\`solstice pipelines\``),
  );
});

test('a push to a branch cancels the older push pipelines of that branch (cancel-superseded)', async () => {
  const gate = gatePath();
  const repo = makeRepo({
    '.solstice/workflow.kdl': `
      job "wait" {
        step "s" run="while [ ! -e ${gate} ]; do sleep 0.1; done"
      }
    `,
  });
  const push = () =>
    solstice(['enqueue', '--direct', '--repo', repo.dir, '--event', 'push', '--branch', 'main']);
  const older = pipelineIdOf(await push());
  await waitFor(
    async () => (await h.pipelines.listJobs(older)).some((j) => j.state === 'running'),
    120_000,
    'the first pipeline to run its job',
  );
  const newer = pipelineIdOf(await push());
  await waitFor(
    async () => (await h.pipelines.getPipeline(older))?.state === 'cancelled',
    120_000,
    'the older push pipeline to be cancelled',
  );
  expect((await h.pipelines.getPipeline(older))?.message).toBe(
    `superseded by pipeline ${newer}, a newer push to the branch`,
  );
  fs.writeFileSync(gate, '');
  const done = await solstice(['logs', '-f', newer, '--exit-status']);
  expect(done.code).toBe(0);
}, 300_000);

test('bad --event and --branch values are refused with the reason', async () => {
  const tag = await solstice(['enqueue', '--direct', '--repo', filtered.dir, '--event', 'tag']);
  expect(tag.code).toBe(2);
  expect(tag.stderr).toMatch(/^error: --event must be one of push, pull_request, manual, got "tag"/);
  const gone = await solstice(['enqueue', '--direct', '--repo', filtered.dir, '--branch', 'nope']);
  expect(gone.code).toBe(2);
  expect(gone.stderr).toMatch(/^error: branch nope does not exist in .*\nhint: +Give --commit/);
  const bad = await solstice(['enqueue', '--direct', '--repo', filtered.dir, '--branch', 'a..b']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/^error: --branch "a..b" is not a valid branch name/);
});

test('enqueue -f says within seconds that no worker polls the task queue, and keeps waiting', async () => {
  const env = { ...cliEnv(h.cfg), SOLSTICE_TASK_QUEUE: `nobody-polls-${Date.now()}` };
  const child = spawn(process.execPath, [CLI, 'enqueue', '--direct', '--repo', filtered.dir, '--follow'], {
    env,
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let workflowId: string | undefined;
  try {
    await waitFor(() => /^workflow (\S+)$/m.test(out), 60_000, 'the pipeline to start');
    workflowId = /^workflow (\S+)$/m.exec(out)?.[1];
    const started = Date.now();
    await waitFor(() => out.includes('note: no worker polls'), 15_000, 'the note that no worker polls');
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(out).toMatch(
      /^note: no worker polls task queue "nobody-polls-\d+" on .*; the pipeline waits until one does\. Start one with `solstice worker`/m,
    );
    // Still waiting, not ended.
    await new Promise((r) => setTimeout(r, 1000));
    expect(child.exitCode).toBeNull();
  } finally {
    child.kill('SIGKILL');
    if (workflowId) await h.client.workflow.getHandle(workflowId).terminate('test over');
  }
}, 120_000);

/** A command run on a pseudo-terminal (util-linux `script`), as someone at a terminal runs it. */
async function onTerminal(args: string[]): Promise<CliResult> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  try {
    const { stdout, stderr } = await promisify(execFile)('script', ['-qec', command, '/dev/null'], {
      env: { ...cliEnv(h.cfg), TERM: 'xterm', COLUMNS: '100' },
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    return err as CliResult;
  }
}

test('enqueue -f on a terminal keeps a jobs overview under the lines, redrawn in place; on a pipe it prints none', async () => {
  const r = await onTerminal(['enqueue', '--direct', '--repo', filtered.dir, '--follow']);
  expect(r.code).toBe(0);
  // Erased (cursor up, clear to the end) and drawn again as lines arrive.
  // eslint-disable-next-line no-control-regex
  expect(r.stdout).toMatch(/\u001b\[\d+F\u001b\[J/);
  expect(r.stdout).toMatch(/── jobs ─+\r?\n/);
  expect(r.stdout).toMatch(/✓ always +success /);
  expect(r.stdout).toMatch(/- release-push +skipped/);
  // The log lines and the summary table are there as on a pipe.
  expect(r.stdout).toMatch(/always +\| always\r?\n/);
  expect(r.stdout).toMatch(/JOB +STATE +EXIT +DURATION +ID/);
  const piped = await solstice(['enqueue', '--direct', '--repo', filtered.dir, '--follow']);
  expect(piped.stdout).not.toContain('\u001b[');
  expect(piped.stdout).not.toContain('── jobs');
}, 300_000);
