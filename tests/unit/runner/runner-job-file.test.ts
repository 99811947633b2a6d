/** The job file's one schema: what the writer renders the reader reads back, and a wrong field is named. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobFileError, parseJobFile, renderJobFile, type JobFile } from '../../../model/job-file';
import { ConfigError } from '../../../platform/errors';
import { loadJobContext } from '../../../runner/job-context';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-jobfile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SHA = '0123456789abcdef0123456789abcdef01234567';
const BASE = `job_id: j\ntoken: t\ncontact_addr: h:1\nrepo_url: /r\ncommit_sha: ${SHA}\n`;

function writeJobFile(text: string): string {
  const p = path.join(dir, `job-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return p;
}

function loadError(text: string): Error {
  const file = writeJobFile(text);
  try {
    loadJobContext({ SOLSTICE_JOB_FILE: file });
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the job file to be refused');
}

describe('the runner refuses a job file with a wrong field, naming the file and the field', () => {
  test.each([
    [
      'steps:\n  - run: a\n  - run: b\n    continue_on_error: yes\n',
      'steps[1].continue_on_error: step 2 continue_on_error must be true or false',
    ],
    ['steps:\n  - name: x\n', 'steps[0].run: step 1 has no run script'],
    ['steps:\n  - run: a\n    timeout: 5\n', 'steps[0]: step 1 has unknown key "timeout"'],
    ['steps:\n  - run: [a]\n', 'steps[0].run: step 1 run must be a string'],
    ['timeout_ms: 90s\n', 'timeout_ms must be a whole number of milliseconds'],
    ['env:\n  A: [1]\n', 'env must be a mapping of names to strings'],
    ['artifacts: dist\n', 'artifacts must be a list of paths'],
    ['token: [a, b]\n', 'token must be a string'],
  ])('%j', (extra, located) => {
    const err = loadError(BASE.replace('token: t\n', '') + extra);
    expect(err).toBeInstanceOf(JobFileError);
    // Exit code 2, like every other job setting the runner cannot use.
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/^job file \/.*\/job-\w+\.yaml: /);
    expect(err.message).toContain(`: ${located}`);
  });

  test('an unknown key, e.g. a misspelt one, is refused rather than ignored', () => {
    const err = loadError(`${BASE}tokn: x\n`);
    expect(err.message).toMatch(/^job file \S+ has unknown key "tokn"$/);
  });

  test('every problem is listed, one per line', () => {
    const err = loadError(`${BASE}timeout_ms: soon\nsteps: nope\n`);
    expect(err.message.split('\n')).toEqual([
      expect.stringMatching(/timeout_ms must be a whole number of milliseconds$/),
      expect.stringMatching(/steps must be a list$/),
    ]);
  });
});

describe('renderJobFile and parseJobFile are one mapping', () => {
  test('every field survives the round trip, digit-only commit ids and a __proto__ variable included', () => {
    const full: JobFile = {
      jobId: 'j-1',
      token: 'tok',
      contactAddr: '10.0.2.2:50051',
      tlsCa: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      repoUrl: '/srv/repo',
      commitSha: '1234567890123456789012345678901234567890',
      runnerUrl: 'http://10.0.2.2:8080/runner.js',
      workdir: '/var/lib/solstice/work',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      otlpEndpoint: 'http://10.0.2.2:4317',
      timeoutMs: 90_000,
      env: Object.fromEntries([
        ['__proto__', 'x'],
        ['NUM', '007'],
        ['COLON', 'a: b'],
      ]),
      secrets: { TOKEN: 'line 1\nline 2\n' },
      artifacts: ['dist/**', 'report 1.xml'],
      steps: [
        { name: 'build', run: 'make\n', continueOnError: false },
        { name: 'maybe', run: 'exit 1', workingDirectory: 'sub dir', continueOnError: true },
      ],
    };
    const back = parseJobFile(renderJobFile(full), 'job.yaml');
    expect(back).toEqual(full);
    expect(Object.keys(back.env ?? {})).toEqual(['__proto__', 'NUM', 'COLON']);
  });

  test('empty lists, mappings and unset fields are left out of the file', () => {
    const text = renderJobFile({ jobId: 'j', env: {}, secrets: {}, artifacts: [], tlsCa: '' });
    expect(text).toBe('job_id: j\n');
  });

  test('a step without a name is named by its position', () => {
    expect(parseJobFile('steps:\n  - run: a\n  - run: b\n', 'f').steps?.map((s) => s.name)).toEqual([
      'step 1',
      'step 2',
    ]);
  });
});

describe('Actions fields', () => {
  test('step actions, the job context and the needed jobs outputs survive the job file', () => {
    const text = renderJobFile({
      jobId: 'j',
      steps: [
        {
          name: 's',
          run: 'echo ${{ matrix.x }}',
          continueOnError: false,
          actions: { id: 'v', if: 'failure()', shell: 'bash', env: [['A', '1']], timeoutMs: 60_000 },
        },
      ],
      actions: '{"contexts":{}}',
      needsOutputs: { 'ci/build': { version: '1.2.3' } },
    });
    const back = parseJobFile(text, 'job.yaml');
    expect(back.steps?.[0].actions).toEqual({
      id: 'v',
      if: 'failure()',
      shell: 'bash',
      env: [['A', '1']],
      timeoutMs: 60_000,
    });
    expect(back.actions).toBe('{"contexts":{}}');
    expect(back.needsOutputs).toEqual({ 'ci/build': { version: '1.2.3' } });
  });

  test('a broken needs_outputs names the field', () => {
    expect(() => parseJobFile('needs_outputs: "[1]"\n', 'job.yaml')).toThrow(
      /needs_outputs must map job names/,
    );
  });
});
