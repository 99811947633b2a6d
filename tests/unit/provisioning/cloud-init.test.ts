import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { loadJobContext } from '../../../runner/job-context';
import { BOOTSTRAP_PATH, JOB_FILE_PATH, renderSeed } from '../../../provisioning/cloud-init';

const ctx = {
  machineId: 'job-1-1',
  jobId: '11111111-1111-1111-1111-111111111111',
  token: 'secret-token',
  runnerUrl: 'http://10.0.2.100:8080/runner.js',
  contactAddr: '10.0.2.100:50051',
  repoUrl: "https://example.invalid/o'brien/repo.git",
  commitSha: 'a'.repeat(40),
  hostId: 'host-a',
};

interface UserData {
  write_files: { path: string; permissions: string; content: string }[];
  runcmd: string[];
}

test('renders NoCloud user-data with the job file and a bootstrap that fetches the runner', () => {
  const seed = renderSeed(ctx);
  expect(seed.userData.startsWith('#cloud-config\n')).toBe(true);
  expect(YAML.parse(seed.metaData)).toEqual({ 'instance-id': 'job-1-1', 'local-hostname': 'job-1-1' });
  const ud = YAML.parse(seed.userData) as UserData;
  const jobFile = ud.write_files.find((f) => f.path === JOB_FILE_PATH);
  expect(jobFile?.permissions).toBe('0600');
  expect(YAML.parse(jobFile?.content ?? '')).toMatchObject({
    job_id: ctx.jobId,
    token: ctx.token,
    contact_addr: ctx.contactAddr,
    repo_url: ctx.repoUrl,
    commit_sha: ctx.commitSha,
  });
  const bootstrap = ud.write_files.find((f) => f.path === BOOTSTRAP_PATH)?.content ?? '';
  expect(bootstrap).not.toContain('undefined');
  expect(bootstrap).toContain(`export SOLSTICE_RUNNER_URL='${ctx.runnerUrl}'`);
  expect(bootstrap).toContain(`export SOLSTICE_REPO_URL='https://example.invalid/o'\\''brien/repo.git'`);
  expect(bootstrap).toContain('export SOLSTICE_JOB_FILE="$root/etc/solstice/job.yaml"');
  // The token reaches the machine only through the 0600 job file.
  expect(bootstrap).not.toContain(ctx.token);
  expect(ud.runcmd).toEqual([`"\${SOLSTICE_ROOT:-}${BOOTSTRAP_PATH}"`]);
});

test("the job file carries the job's steps, env, timeout and artifacts, and the runner reads them back", () => {
  const definition = {
    steps: [
      { name: 'build', run: 'make\nmake check\n', continueOnError: false },
      { name: "it's fine", run: 'exit 1', workingDirectory: 'sub dir', continueOnError: true },
    ],
    env: { GREETING: 'hello: world', NUM: '007' },
    timeoutMs: 90_000,
    artifacts: ['dist/**', 'report 1.xml'],
  };
  const ud = YAML.parse(renderSeed({ ...ctx, definition }).userData) as UserData;
  const content = ud.write_files.find((f) => f.path === JOB_FILE_PATH)?.content ?? '';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-seed-'));
  try {
    const file = path.join(dir, 'job.yaml');
    writeFileSync(file, content);
    const back = loadJobContext({ SOLSTICE_JOB_FILE: file });
    expect(back.steps).toEqual(definition.steps);
    expect(back.env).toEqual(definition.env);
    expect(back.timeoutMs).toBe(90_000);
    expect(back.artifacts).toEqual(definition.artifacts);
    expect(back.jobId).toBe(ctx.jobId);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without a definition the job file has no steps: the runner falls back to job.sh', () => {
  const ud = YAML.parse(renderSeed(ctx).userData) as UserData;
  const jobFile = YAML.parse(ud.write_files.find((f) => f.path === JOB_FILE_PATH)?.content ?? '') as object;
  expect(jobFile).not.toHaveProperty('steps');
  expect(jobFile).not.toHaveProperty('artifacts');
});

test('the runner refuses artifact paths outside the checkout', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-seed-'));
  try {
    for (const bad of ['../x', '/etc/passwd', 'a/../../x']) {
      const ud = YAML.parse(renderSeed({ ...ctx, definition: { artifacts: [bad] } }).userData) as UserData;
      const file = path.join(dir, 'job.yaml');
      writeFileSync(file, ud.write_files.find((f) => f.path === JOB_FILE_PATH)?.content ?? '');
      expect(() => loadJobContext({ SOLSTICE_JOB_FILE: file })).toThrow(
        `artifact path "${bad}" must be a relative path`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('secret values and the TLS CA travel only in the 0600 job file, and the runner reads them back', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const secrets = { DEPLOY_TOKEN: 'dep-value', CERT: 'line 1\nline 2\n' };
  const seed = renderSeed({ ...ctx, secrets, tlsCa: ca });
  const ud = YAML.parse(seed.userData) as UserData;
  const jobFile = ud.write_files.find((f) => f.path === JOB_FILE_PATH)?.content ?? '';
  const bootstrap = ud.write_files.find((f) => f.path === BOOTSTRAP_PATH)?.content ?? '';
  expect(bootstrap).not.toContain('dep-value');
  expect(ud.runcmd.join('\n')).not.toContain('dep-value');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-seed-'));
  try {
    const file = path.join(dir, 'job.yaml');
    writeFileSync(file, jobFile);
    const back = loadJobContext({ SOLSTICE_JOB_FILE: file });
    expect(back.secrets).toEqual(secrets);
    expect(back.tlsCa).toBe(ca);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
