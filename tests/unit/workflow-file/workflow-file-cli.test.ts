/** `solstice workflow validate|show` on real files, through clipanion as cli/main.ts runs them. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Cli } from 'clipanion';
import { WorkflowShowCommand, WorkflowValidateCommand } from '../../../cli/commands/workflow';
import { InputError } from '../../../platform/errors';

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = new Cli({ binaryName: 'solstice' });
  cli.register(WorkflowValidateCommand);
  cli.register(WorkflowShowCommand);
  const stdout = sink();
  const stderr = sink();
  const command = cli.process(argv);
  command.context = { ...Cli.defaultContext, stdout: stdout.stream, stderr: stderr.stream, colorDepth: 1 };
  command.cli = cli;
  const code = (await command.validateAndExecute()) as number;
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

let dir: string;
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
};
const fixture = path.join(__dirname, '../../fixtures/workflow-file/pipeline.kdl');

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-workflow-cli-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('solstice workflow validate', () => {
  test('a valid file exits 0; unknown labels are warnings', async () => {
    const r = await run(['workflow', 'validate', fixture]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'pipeline.kdl:19:11: warning: runs-on label "debian-12" of job "test" is not in the image map (known labels: local)',
    );
    expect(r.stdout).toMatch(/pipeline\.kdl: valid, 4 jobs, 1 warning\n$/);
  });

  test('--label adds known labels', async () => {
    const r = await run(['workflow', 'validate', '--label', 'local', '--label', 'debian-12', fixture]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pipeline\.kdl: valid, 4 jobs\n$/);
  });

  test('SOLSTICE_LABELS is the fallback for --label', async () => {
    process.env.SOLSTICE_LABELS = 'local, debian-12';
    try {
      expect((await run(['workflow', 'validate', fixture])).stdout).not.toContain('warning');
    } finally {
      delete process.env.SOLSTICE_LABELS;
    }
  });

  test('errors print as file:line:col: error: message with a hint, and exit 1', async () => {
    const file = write('bad.kdl', 'job "a" {\n  timeout "5"\n  step "x" run="y"\n}\n');
    const r = await run(['workflow', 'validate', file]);
    expect(r.code).toBe(1);
    const shown = path.relative(process.cwd(), file);
    expect(r.stdout).toBe(
      [
        `${shown}:2:11: error: duration "5" has no unit`,
        '  |',
        '2 |   timeout "5"',
        '  |           ^^^',
        '  hint: add a unit: "5s" or "5m"',
        `${shown}: 1 error, 0 warnings`,
        '',
      ].join('\n'),
    );
  });

  test('--json is one machine-readable object', async () => {
    const file = write('bad.kdl', 'job "a" {\n  needs "b"\n  step "x" run="y"\n}\n');
    const r = await run(['workflow', 'validate', '--json', file]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: false, errors: 1, warnings: 0, workflow: null, graph: null });
    expect(report.diagnostics).toEqual([
      expect.objectContaining({ code: 'unknown-need', line: 2, column: 9, severity: 'error' }),
    ]);
    const ok = JSON.parse(
      (await run(['workflow', 'validate', '--json', '--label', 'debian-12', fixture])).stdout,
    );
    expect(ok.ok).toBe(true);
    expect(ok.graph).toEqual({
      order: ['build', 'test', 'lint', 'deploy'],
      stages: [['build'], ['test', 'lint'], ['deploy']],
    });
    expect(ok.workflow.jobs).toHaveLength(4);
  });

  test('without a path it reads .solstice/workflow.kdl at the repository root', async () => {
    execFileSync('git', ['init', '-q', dir]);
    write('.solstice/workflow.kdl', 'job "root" {\n  step "x" run="y"\n}\n');
    fs.mkdirSync(path.join(dir, 'sub/deeper'), { recursive: true });
    const cwd = process.cwd();
    process.chdir(path.join(dir, 'sub/deeper'));
    try {
      const r = await run(['workflow', 'validate']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('../../.solstice/workflow.kdl: valid, 1 job\n');
    } finally {
      process.chdir(cwd);
    }
  });

  test('a missing file is an input error with a hint, not a stack trace', async () => {
    write('.solstice/job.sh', 'echo hi\n');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const err = await run(['workflow', 'validate']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).message).toBe('no workflow file at .solstice/workflow.kdl');
      expect((err as InputError).hint).toContain('.solstice/job.sh as a one-job pipeline');
      await expect(run(['workflow', 'show', 'nope.kdl'])).rejects.toThrow('no workflow file at nope.kdl');
      await expect(run(['workflow', 'show', '.solstice'])).rejects.toThrow('.solstice is a directory');
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('solstice workflow show', () => {
  test('prints jobs, steps and the DAG', async () => {
    const r = await run(['workflow', 'show', '--label', 'local', '--label', 'debian-12', fixture]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('job build (runs-on local, timeout 30m)\n');
    expect(r.stdout).toContain(
      '    1. install  npm ci  [in web]\n    2. build    npm run build  [+1 line]\n',
    );
    expect(r.stdout).toContain('            test[node=20,os=debian-12] on debian-12\n');
    expect(r.stdout).toContain('    1. test  npm test  [continue on error]\n');
    expect(r.stdout).toContain('  when      events push; branches main, release/*\n');
    expect(r.stdout).toContain(
      [
        'order (jobs in one stage run in parallel):',
        '  stage 1: build',
        '  stage 2: test, lint',
        '  stage 3: deploy',
        '  test needs build',
        '  lint needs build',
        '  deploy needs test, lint',
        '',
      ].join('\n'),
    );
  });

  test('a file with errors prints them and exits 1', async () => {
    const file = write('cycle.kdl', 'job "a" {\n  needs "a"\n  step "x" run="y"\n}\n');
    const r = await run(['workflow', 'show', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(':2:9: error: dependency cycle: a -> a\n');
  });

  test('--json has the workflow and its graph', async () => {
    const r = await run(['workflow', 'show', '--json', fixture]);
    expect(JSON.parse(r.stdout).graph.order).toEqual(['build', 'test', 'lint', 'deploy']);
  });
});
