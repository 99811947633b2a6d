/**
 * The Actions planner on small workflows: matrix include/exclude with GitHub's documented
 * examples, event filters, job `if`, runs-on mapping, built-in actions and the "not supported"
 * errors; and `solstice workflow validate|show` on Actions files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Cli } from 'clipanion';
import { WorkflowShowCommand, WorkflowValidateCommand } from '../../../cli/commands/workflow';
import { parseInputs } from '../../../cli/enqueue';
import {
  expandMatrix,
  filterPattern,
  labelFor,
  planActions,
  type ActionsTrigger,
} from '../../../workflow-file/actions';

const RUNS_ON = { runsOn: { 'debian-12': ['ubuntu-latest', 'linux'], local: ['docker'] } };
const push = (ref = 'refs/heads/main'): ActionsTrigger => ({ event: 'push', ref, sha: 'abc' });
const plan = (text: string, trigger: ActionsTrigger = push()) =>
  planActions([{ path: '.forgejo/workflows/ci.yml', text }], trigger, RUNS_ON);

describe('matrix, as GitHub documents it', () => {
  test('"Expanding or adding matrix configurations": include adds to the combinations it fits', () => {
    // docs.github.com, "Running variations of jobs in a workflow", example with fruit/animal.
    expect(
      expandMatrix({
        fruit: ['apple', 'pear'],
        animal: ['cat', 'dog'],
        include: [
          { color: 'green' },
          { color: 'pink', animal: 'cat' },
          { fruit: 'apple', shape: 'circle' },
          { fruit: 'banana' },
          { fruit: 'banana', animal: 'cat' },
        ],
      }),
    ).toEqual([
      { fruit: 'apple', animal: 'cat', color: 'pink', shape: 'circle' },
      { fruit: 'apple', animal: 'dog', color: 'green', shape: 'circle' },
      { fruit: 'pear', animal: 'cat', color: 'pink' },
      { fruit: 'pear', animal: 'dog', color: 'green' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ]);
  });

  test('"Excluding matrix configurations": an exclude entry removes every combination it matches', () => {
    const combos = expandMatrix({
      os: ['macos-latest', 'windows-latest'],
      version: [12, 14, 16],
      environment: ['staging', 'production'],
      exclude: [
        { os: 'macos-latest', version: 12, environment: 'production' },
        { os: 'windows-latest', version: 16 },
      ],
    });
    expect(combos).toHaveLength(12 - 1 - 2);
    expect(combos).not.toContainEqual({ os: 'macos-latest', version: 12, environment: 'production' });
    expect(combos.filter((c) => c.os === 'windows-latest' && c.version === 16)).toEqual([]);
  });

  test('only include: each entry is a combination', () => {
    expect(expandMatrix({ include: [{ a: 1 }, { a: 2, b: 3 }] })).toEqual([{ a: 1 }, { a: 2, b: 3 }]);
  });

  test('more than 256 combinations are refused, not cut short', () => {
    expect(() => expandMatrix({ a: [...Array(20).keys()], b: [...Array(20).keys()] })).toThrow(
      /400 combinations/,
    );
  });
});

test("filter patterns follow GitHub's cheat sheet", () => {
  expect(filterPattern('feature/*').test('feature/a')).toBe(true);
  expect(filterPattern('feature/*').test('feature/a/b')).toBe(false);
  expect(filterPattern('feature/**').test('feature/a/b')).toBe(true);
  expect(filterPattern('v[12].[0-9]+.[0-9]+').test('v1.10.2')).toBe(true);
  expect(filterPattern('*.jsx?').test('page.js')).toBe(true);
  expect(filterPattern('*.jsx?').test('page.jsx')).toBe(true);
});

test('runs-on: a machine label that provides every label, or the label itself', () => {
  expect(labelFor(['ubuntu-latest'], RUNS_ON.runsOn)).toBe('debian-12');
  expect(labelFor(['linux', 'ubuntu-latest'], RUNS_ON.runsOn)).toBe('debian-12');
  expect(labelFor(['linux', 'docker'], RUNS_ON.runsOn)).toBeUndefined();
  expect(labelFor(['local'], RUNS_ON.runsOn)).toBe('local');
});

describe('events and job if', () => {
  const wf = `on:
  push:
    branches: [main, 'release/**', '!release/old']
    tags: ['v*']
  pull_request:
jobs:
  a:
    runs-on: ubuntu-latest
    steps: [{ run: echo a }]
  deploy:
    needs: a
    if: startsWith(github.ref, 'refs/tags/')
    runs-on: ubuntu-latest
    steps: [{ run: echo deploy }]
`;
  test.each([
    ['refs/heads/main', ['ci/a', 'ci/deploy (skipped)']],
    ['refs/heads/release/1.2', ['ci/a', 'ci/deploy (skipped)']],
    ['refs/heads/release/old', []],
    ['refs/heads/dev', []],
    ['refs/tags/v1.0', ['ci/a', 'ci/deploy']],
    ['refs/tags/nightly', []],
  ])('push of %s runs %j', async (ref, expected) => {
    const p = await plan(wf, push(ref));
    expect(p.errors).toEqual([]);
    expect(p.jobs.map((j) => `${j.name}${j.skipReason ? ' (skipped)' : ''}`)).toEqual(expected);
  });

  test('only branch filters: a tag push does not run it', async () => {
    const p = await plan(
      'on: {push: {branches: [main]}}\njobs: {a: {runs-on: docker, steps: [{run: x}]}}\n',
      push('refs/tags/v1'),
    );
    expect(p.workflows).toEqual([]);
  });

  test('workflow_dispatch: inputs with defaults, unknown and missing ones refused', async () => {
    const text = `on:
  workflow_dispatch:
    inputs:
      target: {required: true}
      level: {default: info}
jobs:
  a:
    runs-on: docker
    steps: [{ run: 'echo \${{ inputs.target }}' }]
`;
    const dispatch = (inputs: Record<string, string>): ActionsTrigger => ({
      ...push(),
      dispatch: { workflow: '.forgejo/workflows/ci.yml', inputs },
    });
    const ok = await plan(text, dispatch({ target: 'staging' }));
    expect(ok.errors).toEqual([]);
    expect(JSON.parse(ok.jobs[0].actions as string).contexts.inputs).toEqual({
      target: 'staging',
      level: 'info',
    });
    const missing = await plan(text, dispatch({}));
    expect(missing.errors[0].diagnostics[0].message).toMatch(/input "target" is required/);
    const unknown = await plan(text, dispatch({ target: 'x', nope: '1' }));
    expect(unknown.errors[0].diagnostics[0].message).toMatch(/no input "nope"/);
    expect((await plan(text, push())).workflows).toEqual([]);
  });
});

describe('steps', () => {
  test('checkout is built in (Forgejo URL form too); upload-artifact becomes artifacts; secrets are named', async () => {
    const p = await plan(`on: push
jobs:
  a:
    runs-on: docker
    steps:
      - uses: https://code.forgejo.org/actions/checkout@v4
        with: { path: sub, fetch-depth: 0 }
      - run: make TOKEN=\${{ secrets.DEPLOY_TOKEN }}
        shell: sh
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: |
            dist/
            *.log
`);
    expect(p.errors).toEqual([]);
    const [job] = p.jobs;
    expect(job.artifacts).toEqual(['dist/**', '*.log']);
    expect(job.secrets).toEqual(['DEPLOY_TOKEN']);
    expect(job.steps?.map((s) => [s.name, s.actions?.shell])).toEqual([
      ['checkout into sub', 'sh'],
      ['make TOKEN=${{ secrets.DEPLOY_TOKEN }}', 'sh'],
    ]);
    expect(job.steps?.[0].run).toContain('git clone -q --no-hardlinks "$SOLSTICE_WORKDIR" \'sub\'');
    expect(job.steps?.[0].run).toContain('--unshallow');
  });

  test('what is not run yet is a located error that says what to do', async () => {
    const p = await plan(`on: push
concurrency:
  group: x
  queue: max
jobs:
  a:
    runs-on: ubuntu-latest
    container: node:20
    steps:
      - uses: actions/setup-node@v4
      - run: echo
        shell: pwsh
`);
    const d = p.errors[0].diagnostics.map((x) => [x.line, x.column, x.code, x.message, x.hint]);
    expect(d).toEqual([
      [
        4,
        10,
        'unsupported',
        'concurrency.queue is a GitHub-only key; Forgejo does not run it either',
        undefined,
      ],
      [8, 16, 'unsupported', expect.stringContaining('container is not supported'), undefined],
      [
        10,
        15,
        'unsupported-action',
        'uses: actions/setup-node@v4 is not supported: Solstice runs only actions/checkout and actions/upload-artifact itself',
        expect.stringContaining('run: step'),
      ],
      [12, 16, 'unsupported', 'step 2: shell "pwsh" is not supported; use bash or sh', undefined],
    ]);
    expect(p.jobs).toEqual([]);
  });

  test("schema errors come from GitHub's parser, located", async () => {
    const p = await plan(
      'on: push\njobs:\n  a:\n    runs-on: docker\n    timeout-minutes: abc\n    steps: [{run: x}]\n',
    );
    expect(p.errors[0].diagnostics[0]).toMatchObject({ line: 5, code: 'schema' });
  });
});

test('enqueue --input name=value', () => {
  expect(parseInputs(['a=1', 'b=x=y', 'c='])).toEqual({ a: '1', b: 'x=y', c: '' });
  expect(() => parseInputs(['novalue'])).toThrow(/name=value/);
});

describe('solstice workflow validate|show on Actions files', () => {
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
  async function run(argv: string[]) {
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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-actions-cli-'));
  const good = path.join(dir, 'good.yml');
  const bad = path.join(dir, 'bad.yml');
  fs.writeFileSync(
    good,
    'on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    strategy: {matrix: {n: [1, 2]}}\n    steps:\n      - run: echo ${{ matrix.n }}\n',
  );
  fs.writeFileSync(
    bad,
    'on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/cache@v4\n',
  );

  test('validate: ok exits 0, an error exits 1 with file:line:col', async () => {
    expect((await run(['workflow', 'validate', good])).code).toBe(0);
    const r = await run(['workflow', 'validate', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${bad}:6:15: error: uses: actions/cache@v4 is not supported`);
  });

  test('validate --json', async () => {
    const r = await run(['workflow', 'validate', '--json', bad]);
    const json = JSON.parse(r.stdout);
    expect(json.ok).toBe(false);
    expect(json.files[0].diagnostics[0]).toMatchObject({ line: 6, column: 15, code: 'unsupported-action' });
  });

  test('show prints the expanded jobs', async () => {
    const r = await run(['workflow', 'show', good]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('job good/t (1) (runs-on local)');
    expect(r.stdout).toContain('job good/t (2) (runs-on local)');
  });
});
