import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../../platform/errors';
import { loadJobContext } from '../../../runner/job-context';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-jobctx-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function jobFile(text: string): string {
  const p = path.join(dir, `job-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return p;
}

const SHA = '0123456789abcdef0123456789abcdef01234567';
const fullEnv = {
  SOLSTICE_JOB_FILE: '/dev/null',
  SOLSTICE_JOB_ID: 'job-1',
  SOLSTICE_JOB_TOKEN: 'secret',
  ORCH_CONTACT_ADDR: '10.0.0.1:50051',
  SOLSTICE_REPO_URL: 'https://example.com/r.git',
  SOLSTICE_COMMIT_SHA: SHA,
};

describe('loadJobContext', () => {
  test('job file steps: a list of mappings; bad shapes and escaping working directories are refused', () => {
    const base = `job_id: j\ntoken: t\ncontact_addr: h:1\nrepo_url: /r\ncommit_sha: ${SHA}\n`;
    const load = (extra: string) => loadJobContext({ SOLSTICE_JOB_FILE: jobFile(base + extra) });
    expect(load('steps: []\n').steps).toEqual([]);
    expect(load('').steps).toBeUndefined();
    expect(load('env:\n  __proto__: x\n  A: "1"\n').env).toEqual(
      Object.fromEntries([
        ['__proto__', 'x'],
        ['A', '1'],
      ]),
    );
    expect(() => load('steps: nope\n')).toThrow(/steps must be a list/);
    expect(() => load('steps:\n  - name: x\n')).toThrow(/step 1 has no run script/);
    expect(() => load('steps:\n  - run: x\n    working_directory: ../up\n')).toThrow(/inside the checkout/);
    expect(() => load('steps:\n  - run: x\n    working_directory: /abs\n')).toThrow(/inside the checkout/);
    expect(() => load('env: [a]\n')).toThrow(/env must be a mapping/);
    expect(load('steps:\n  - run: echo\n').steps).toEqual([
      { name: 'step 1', run: 'echo', continueOnError: false },
    ]);
  });

  test('reads everything from the environment', () => {
    const ctx = loadJobContext({ ...fullEnv, SOLSTICE_WORKDIR: '/w' });
    expect(ctx).toEqual({
      jobId: 'job-1',
      token: 'secret',
      contactAddr: '10.0.0.1:50051',
      repoUrl: 'https://example.com/r.git',
      commitSha: SHA,
      workdir: '/w',
      retryForMs: 120_000,
      env: {},
      secrets: {},
      timeoutMs: 0,
      heartbeatIntervalMs: 15_000,
      artifacts: [],
    });
  });

  test('reads the YAML job file, keeps digit-only commit ids as strings, and env wins', () => {
    const digits = '1234567890123456789012345678901234567890';
    const file = jobFile(
      [
        'job_id: from-file',
        'token: file-token',
        'contact_addr: orch:50051',
        'repo_url: /srv/repo',
        `commit_sha: ${digits}`,
        'workdir: /tmp/wd',
      ].join('\n'),
    );
    const ctx = loadJobContext({ SOLSTICE_JOB_FILE: file, SOLSTICE_JOB_ID: 'from-env' });
    expect(ctx).toMatchObject({
      jobId: 'from-env',
      token: 'file-token',
      contactAddr: 'orch:50051',
      repoUrl: '/srv/repo',
      commitSha: digits,
      workdir: '/tmp/wd',
    });
  });

  test('defaults the workdir to ~/work', () => {
    expect(loadJobContext(fullEnv).workdir).toBe(path.join(os.homedir(), 'work'));
  });

  test('names every missing setting with its env variable and file key', () => {
    try {
      loadJobContext({ SOLSTICE_JOB_FILE: '/dev/null', SOLSTICE_JOB_ID: 'x' });
      throw new Error('expected an error');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).exitCode).toBe(2);
      const msg = (err as Error).message;
      for (const name of [
        'SOLSTICE_JOB_TOKEN',
        'ORCH_CONTACT_ADDR',
        'SOLSTICE_REPO_URL',
        'SOLSTICE_COMMIT_SHA',
      ]) {
        expect(msg).toContain(name);
      }
      expect(msg).toContain('commit_sha');
      expect(msg).not.toContain('SOLSTICE_JOB_ID');
    }
  });

  test('a named job file that does not exist or is not a mapping is an error', () => {
    expect(() => loadJobContext({ ...fullEnv, SOLSTICE_JOB_FILE: path.join(dir, 'nope.yaml') })).toThrow(
      /cannot read job file/,
    );
    expect(() => loadJobContext({ ...fullEnv, SOLSTICE_JOB_FILE: jobFile('- a\n- b\n') })).toThrow(/mapping/);
    expect(() => loadJobContext({ ...fullEnv, SOLSTICE_JOB_FILE: jobFile('a: [\n') })).toThrow(
      /not valid YAML/,
    );
  });

  test('rejects values that could be taken for git options or are malformed', () => {
    expect(() => loadJobContext({ ...fullEnv, SOLSTICE_COMMIT_SHA: '--upload-pack=evil' })).toThrow(
      ConfigError,
    );
    expect(() => loadJobContext({ ...fullEnv, SOLSTICE_REPO_URL: '--upload-pack=evil' })).toThrow(
      ConfigError,
    );
    expect(() => loadJobContext({ ...fullEnv, ORCH_CONTACT_ADDR: 'no-port' })).toThrow(/host:port/);
    expect(loadJobContext({ ...fullEnv, ORCH_CONTACT_ADDR: '[::1]:50051' }).contactAddr).toBe('[::1]:50051');
    expect(loadJobContext({ ...fullEnv, SOLSTICE_COMMIT_SHA: SHA.toUpperCase() }).commitSha).toBe(SHA);
  });

  test('trace context and span endpoint: a bad traceparent starts a new trace, a bad endpoint is an error', () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const file = jobFile(`traceparent: ${tp}\notlp_endpoint: http://127.0.0.1:4317\n`);
    const ctx = loadJobContext({ ...fullEnv, SOLSTICE_JOB_FILE: file });
    expect(ctx.traceparent).toBe(tp);
    expect(ctx.otlpEndpoint).toBe('http://127.0.0.1:4317');
    expect(loadJobContext({ ...fullEnv, SOLSTICE_TRACEPARENT: 'garbage' }).traceparent).toBeUndefined();
    expect(loadJobContext(fullEnv).otlpEndpoint).toBeUndefined();
    expect(() => loadJobContext({ ...fullEnv, SOLSTICE_OTLP_ENDPOINT: '127.0.0.1:4317' })).toThrow(
      ConfigError,
    );
  });

  test('SOLSTICE_RUNNER_RETRY_FOR tunes the retry budget', () => {
    expect(loadJobContext({ ...fullEnv, SOLSTICE_RUNNER_RETRY_FOR: '5s' }).retryForMs).toBe(5000);
    expect(() => loadJobContext({ ...fullEnv, SOLSTICE_RUNNER_RETRY_FOR: 'soon' })).toThrow(ConfigError);
  });
});
