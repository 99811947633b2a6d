/**
 * Status reporting against a recording HTTP server standing in for the forge APIs: every
 * call is checked (method, path, auth, body); the GitHub App JWT is verified with the App's
 * public key; installation tokens are cached; forge errors say whether retrying can help.
 */
import { createVerify, generateKeyPairSync } from 'node:crypto';
import { createForgeStatusActivities } from '../../../activities/forge-status';
import { ForgeApiError, parseRepoUrl, type StatusUpdate } from '../../../forges/forge';
import { createStatusReporter } from '../../../forges/status';
import { startFakeForge, type FakeForge, type ForgeCall as Recorded } from '../../support/fake-forge';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PEM = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const SHA = 'bffeb74224043ba2feb48d137756c8a9331c449a';

let server: FakeForge;
let base: string;
let calls: Recorded[];
/** Status codes to answer before behaving, per path prefix. */
let failures: { prefix: string; status: number; times: number }[];
let tokenExpiresInMs: number;
/** Check runs the fake GitHub already has for the commit (id, external_id). */
let existingRuns: { id: number; external_id: string }[];

function verifyJwt(jwt: string): Record<string, unknown> {
  const [h, p, s] = jwt.split('.');
  const v = createVerify('RSA-SHA256');
  v.update(`${h}.${p}`);
  if (!v.verify(publicKey, Buffer.from(s, 'base64url'))) throw new Error('bad JWT signature');
  expect(JSON.parse(Buffer.from(h, 'base64url').toString())).toEqual({ alg: 'RS256', typ: 'JWT' });
  return JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
}

beforeAll(async () => {
  server = await startFakeForge((call) => {
    calls.push(call);
    const { path } = call;
    const reply = (status: number, body: unknown) => ({ status, body });
    const f = failures.find((x) => path.startsWith(x.prefix) && x.times > 0);
    if (f) {
      f.times -= 1;
      return reply(f.status, { message: `injected ${f.status}` });
    }
    if (call.method === 'POST' && /^\/api\/v1\/repos\/[^/]+\/[^/]+\/statuses\/[0-9a-f]{40}$/.test(path))
      return reply(201, { id: 1 });
    if (call.method === 'GET' && path === '/repos/Codertocat/Hello-World/installation') {
      const claims = verifyJwt((call.auth ?? '').replace(/^Bearer /, ''));
      expect(claims.iss).toBe('123456');
      return reply(200, { id: 42 });
    }
    if (call.method === 'POST' && path === '/app/installations/42/access_tokens') {
      verifyJwt((call.auth ?? '').replace(/^Bearer /, ''));
      return reply(201, {
        token: 'ghs_installation',
        expires_at: new Date(Date.now() + tokenExpiresInMs).toISOString(),
      });
    }
    if (
      call.method === 'GET' &&
      path.startsWith(`/repos/Codertocat/Hello-World/commits/${SHA}/check-runs?`)
    ) {
      expect(new URL(path, 'http://x').searchParams.get('check_name')).toBe('solstice/build');
      return reply(200, { total_count: existingRuns.length, check_runs: existingRuns });
    }
    if (call.method === 'POST' && path === '/repos/Codertocat/Hello-World/check-runs')
      return reply(201, { id: 7 });
    if (call.method === 'PATCH' && path === '/repos/Codertocat/Hello-World/check-runs/7')
      return reply(200, { id: 7 });
    return reply(404, { message: 'Not Found' });
  });
  base = server.url;
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  calls = [];
  failures = [];
  tokenExpiresInMs = 3_600_000;
  existingRuns = [];
});

const forgejoUpdate = (state: StatusUpdate['state']): StatusUpdate => ({
  forge: 'forgejo',
  repoUrl: `${base}/solstice/app.git`,
  commitSha: SHA,
  job: 'build',
  jobId: '0b7f6a4e-1c1d-5d8e-9f00-0123456789ab',
  state,
  description: state === 'pending' ? 'queued' : `job ${state}`,
});

const githubUpdate = (state: StatusUpdate['state'], checkRunId?: number): StatusUpdate => ({
  forge: 'github',
  repoUrl: 'https://github.com/Codertocat/Hello-World.git',
  commitSha: SHA,
  job: 'build',
  jobId: '0b7f6a4e-1c1d-5d8e-9f00-0123456789ab',
  state,
  description: `job ${state}`,
  summary: 'exit code 0',
  checkRunId,
});

test('repository URLs of every spelling give origin, owner and repo', () => {
  expect(parseRepoUrl('https://forge.example/solstice/app.git')).toEqual({
    origin: 'https://forge.example',
    owner: 'solstice',
    repo: 'app',
  });
  expect(parseRepoUrl('git@github.com:Codertocat/Hello-World.git')).toEqual({
    origin: 'https://github.com',
    owner: 'Codertocat',
    repo: 'Hello-World',
  });
  expect(parseRepoUrl('https://host.example/git/solstice/app')).toMatchObject({
    origin: 'https://host.example/git',
  });
  expect(() => parseRepoUrl('/tmp/local-repo')).toThrow(ForgeApiError);
});

test('Forgejo/Gitea: pending then success as commit statuses with context solstice/<job> and the job link', async () => {
  const reporter = createStatusReporter({
    forgejoToken: 'fj-token',
    githubApiUrl: base,
    publicUrl: 'http://ci.example/',
  });
  await reporter.report(forgejoUpdate('pending'));
  await reporter.report(forgejoUpdate('success'));
  await reporter.report(forgejoUpdate('cancelled'));
  expect(calls).toEqual(
    ['pending', 'success', 'error'].map((state) => ({
      method: 'POST',
      path: `/api/v1/repos/solstice/app/statuses/${SHA}`,
      auth: 'token fj-token',
      body: {
        state,
        context: 'solstice/build',
        description: expect.any(String) as string,
        target_url: 'http://ci.example/jobs/0b7f6a4e-1c1d-5d8e-9f00-0123456789ab',
      },
    })),
  );
});

test('GitHub App: JWT → installation token (cached) → check run created, then completed', async () => {
  const reporter = createStatusReporter({ githubAppId: '123456', githubPrivateKey: PEM, githubApiUrl: base });
  const pending = await reporter.report(githubUpdate('pending'));
  expect(pending.checkRunId).toBe(7);
  await reporter.report(githubUpdate('failure', pending.checkRunId));
  expect(calls.map((c) => `${c.method} ${c.path.replace(/\?.*$/, '')}`)).toEqual([
    'GET /repos/Codertocat/Hello-World/installation',
    'POST /app/installations/42/access_tokens',
    `GET /repos/Codertocat/Hello-World/commits/${SHA}/check-runs`,
    'POST /repos/Codertocat/Hello-World/check-runs',
    'PATCH /repos/Codertocat/Hello-World/check-runs/7',
  ]);
  expect(calls[3].auth).toBe('Bearer ghs_installation');
  expect(calls[3].body).toMatchObject({
    name: 'solstice/build',
    head_sha: SHA,
    status: 'in_progress',
    external_id: '0b7f6a4e-1c1d-5d8e-9f00-0123456789ab',
  });
  expect(calls[4].body).toMatchObject({
    status: 'completed',
    conclusion: 'failure',
    output: { title: 'job failure', summary: 'exit code 0' },
  });
  // Credentials never appear in what the forge could echo back in an error.
  expect(JSON.stringify(calls.map((c) => c.body))).not.toContain('PRIVATE KEY');
});

test('GitHub App: an installation token about to expire is replaced', async () => {
  tokenExpiresInMs = 30_000; // inside the one-minute safety margin
  const reporter = createStatusReporter({ githubAppId: '123456', githubPrivateKey: PEM, githubApiUrl: base });
  await reporter.report(githubUpdate('pending'));
  await reporter.report(githubUpdate('success', 7));
  expect(calls.filter((c) => c.path.endsWith('/access_tokens'))).toHaveLength(2);
  expect(calls.filter((c) => c.path.endsWith('/installation'))).toHaveLength(1);
});

test('a final report whose pending one never got through creates the check run completed', async () => {
  const reporter = createStatusReporter({ githubAppId: '123456', githubPrivateKey: PEM, githubApiUrl: base });
  expect((await reporter.report(githubUpdate('cancelled'))).checkRunId).toBe(7);
  expect(calls.at(-1)).toMatchObject({
    method: 'POST',
    body: { status: 'completed', conclusion: 'cancelled', head_sha: SHA },
  });
});

test('a retried pending report finds the check run it already created instead of adding one', async () => {
  existingRuns = [
    { id: 3, external_id: 'another-job' },
    { id: 9, external_id: '0b7f6a4e-1c1d-5d8e-9f00-0123456789ab' },
  ];
  const reporter = createStatusReporter({ githubAppId: '123456', githubPrivateKey: PEM, githubApiUrl: base });
  expect(await reporter.report(githubUpdate('pending'))).toEqual({ checkRunId: 9 });
  expect(calls.filter((c) => c.method === 'POST' && c.path.endsWith('/check-runs'))).toEqual([]);
});

test('forge errors: 5xx and 429 are retryable failures, other 4xx are not; nothing configured is skipped', async () => {
  const activities = createForgeStatusActivities(
    createStatusReporter({ forgejoToken: 'fj-token', githubApiUrl: base }),
  );
  failures = [{ prefix: '/api/v1/repos/solstice/app/statuses', status: 502, times: 1 }];
  await expect(activities.reportForgeStatus(forgejoUpdate('pending'))).rejects.toMatchObject({
    type: 'ForgeUnavailable',
    nonRetryable: false,
  });
  failures = [{ prefix: '/api/v1/repos/solstice/app/statuses', status: 429, times: 1 }];
  await expect(activities.reportForgeStatus(forgejoUpdate('pending'))).rejects.toMatchObject({
    nonRetryable: false,
  });
  failures = [{ prefix: '/api/v1/repos/solstice/app/statuses', status: 403, times: 1 }];
  const rejected = activities.reportForgeStatus(forgejoUpdate('pending'));
  await expect(rejected).rejects.toMatchObject({ type: 'ForgeRejectedStatus', nonRetryable: true });
  await expect(rejected).rejects.not.toThrow(/fj-token/);
  // And once the forge is back, the same report goes through.
  await expect(activities.reportForgeStatus(forgejoUpdate('pending'))).resolves.toEqual({});
  expect(await activities.reportForgeStatus(githubUpdate('pending'))).toEqual({
    skipped: 'no GitHub App configured',
  });
});
