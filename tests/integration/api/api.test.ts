/**
 * The HTTP API as the job page's server mounts it, against a real worker: tokens (none, bad,
 * revoked, expired → 401), scopes (read cannot cancel or rerun → 403, nothing changes),
 * repositories (a token for A gets for B what a missing id gets), bad input (4xx, nothing
 * changes), and a pipeline enqueued, followed over SSE, read back, rerun and cancelled.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { apiServiceOptions } from '../../../api/service';
import { ROUTES } from '../../../api/routes';
import { TokenStore } from '../../../access/tokens';
import { createLogger } from '../../../platform/logger';
import { FsBlobStore } from '../../../storage/blob-store';
import { artifactBlobKey, ArtifactStore } from '../../../storage/artifact-store';
import { startJobPage, type RunningJobPage } from '../../../web/job-page/server';
import { makeRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { waitFor } from '../../support/wait';

let h: Harness;
let page: RunningJobPage;
let api: ReturnType<typeof apiServiceOptions>;
let tokens: TokenStore;
const t: Record<string, string> = {};

const REPO_A = 'https://forge.example/acme/app-a.git';
const REPO_B = 'https://forge.example/acme/app-b.git';
/** Seeded runs of each repository: a running pipeline with one running job that has a log and an artifact. */
const seeded: Record<'a' | 'b', { pipelineId: string; jobId: string }> = {} as never;

async function seed(repoUrl: string): Promise<{ pipelineId: string; jobId: string }> {
  const jobId = randomUUID();
  const pipelineId = randomUUID();
  const commitSha = 'c'.repeat(40);
  await h.jobs.recordJob(
    {
      jobId,
      source: 'manual',
      repoUrl,
      commitSha,
      ref: 'refs/heads/main',
      label: 'local',
      timeoutMs: 1,
      bootTimeoutMs: 1,
      maxMachineAttempts: 1,
    },
    `api-test/${jobId}`,
  );
  await h.jobs.markRunning(jobId);
  await h.jobs.appendLogLines(
    jobId,
    [1, 2, 3].map((seq) => ({ seq, stream: 'stdout', text: `line ${seq} of ${repoUrl}`, time: new Date() })),
  );
  await h.pipelines.recordPipeline(
    {
      pipelineId,
      source: 'manual',
      event: 'manual',
      repoUrl,
      commitSha,
      ref: 'refs/heads/main',
      timeoutMs: 1,
      bootTimeoutMs: 1,
      maxMachineAttempts: 1,
    },
    `api-test-pipeline/${pipelineId}`,
  );
  await h.pipelines.recordJobs(pipelineId, [{ name: 'build', needs: [], state: 'running', jobId }]);
  const blobs = new FsBlobStore(h.cfg.blobFsRoot);
  await blobs.put(artifactBlobKey(jobId, 'dist/out.txt'), Buffer.from('built\n'));
  await new ArtifactStore(h.db).record(jobId, { path: 'dist/out.txt', size: 6, sha256: 'a'.repeat(64) });
  return { pipelineId, jobId };
}

beforeAll(async () => {
  h = await startHarness();
  await h.startWorker();
  const log = createLogger('test');
  log.level = 'warn';
  api = apiServiceOptions(h.cfg, h.db);
  page = await startJobPage({
    addr: '127.0.0.1:0',
    jobs: h.jobs,
    blobs: new FsBlobStore(h.cfg.blobFsRoot),
    log,
    pollMs: 100,
    api,
  });
  tokens = api.tokens;
  seeded.a = await seed(REPO_A);
  seeded.b = await seed(REPO_B);
  const make = async (name: string, scope: 'read' | 'write' | 'admin', repos?: string[]) =>
    (t[name] = (await tokens.create({ name, scope, repos })).token);
  await make('readAll', 'read');
  await make('readA', 'read', ['acme/app-a']);
  await make('writeA', 'write', ['acme/app-a']);
  await make('revoked', 'admin');
  await tokens.revoke('revoked');
  t.expired = (
    await tokens.create({
      name: 'expired',
      scope: 'admin',
      expiresInMs: 1000,
      now: new Date(Date.now() - 5000),
    })
  ).token;
}, 120_000);

afterAll(async () => {
  await page?.close();
  await api?.close();
  await h?.close();
});

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: { error?: { status: number; code: string; message: string; hint?: string } } & Record<
    string,
    unknown
  >;
}

async function call(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; rawBody?: string; contentType?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  const body =
    opts.rawBody ??
    (opts.body !== undefined ? JSON.stringify(opts.body) : method === 'POST' ? '{}' : undefined);
  if (body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await fetch(`${page.url}${path}`, { method, headers, body });
  const text = await res.text();
  let json = {} as Answer['json'];
  try {
    json = JSON.parse(text) as Answer['json'];
  } catch {
    // Not JSON: an artifact or an event stream.
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Every route with the ids of `run` filled in, the way a client would call it. */
function everyRoute(run: {
  pipelineId: string;
  jobId: string;
}): { method: string; path: string; body?: unknown }[] {
  return Object.values(ROUTES)
    .filter((r) => r.path !== '/openapi.json')
    .map((r) => {
      const isPipeline = r.path.startsWith('/v1/pipelines/');
      const path = `/api${r.path.replace(':id', isPipeline ? run.pipelineId : run.jobId).replace('*', 'dist/out.txt')}`;
      const body =
        r.path === '/v1/pipelines' && r.method === 'POST'
          ? { repo: REPO_A, commit: 'c'.repeat(40) }
          : r.path === '/v1/workflow/validate'
            ? { content: 'job "a" { step "s" run="true" }' }
            : undefined;
      return { method: r.method, path, body };
    });
}

const pipelineCount = () => h.db.pipeline.count();

test('the OpenAPI document needs no token and describes every route', async () => {
  const r = await call('GET', '/api/openapi.json');
  expect(r.status).toBe(200);
  const doc = r.json as unknown as {
    openapi: string;
    paths: Record<string, Record<string, { operationId: string }>>;
  };
  expect(doc.openapi).toBe('3.1.0');
  const ops = Object.values(doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
  expect(ops.sort()).toEqual(Object.keys(ROUTES).sort());
  // The query parameters come from the schemas the server validates with.
  const list = doc.paths['/api/v1/pipelines'].get as unknown as { parameters: { name: string }[] };
  expect(list.parameters.map((p) => p.name).sort()).toEqual(['branch', 'page', 'per_page', 'repo', 'state']);
});

test('no token → 401 on every route, with the one error shape and nothing changed', async () => {
  const before = await pipelineCount();
  for (const route of everyRoute(seeded.a)) {
    const r = await call(route.method, route.path, { body: route.body });
    expect({ route, status: r.status, code: r.json.error?.code }).toEqual({
      route,
      status: 401,
      code: 'unauthorized',
    });
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(r.json.error?.message).toBe('this needs a token');
  }
  expect(await pipelineCount()).toBe(before);
});

test('malformed, unknown, revoked and expired tokens → 401, each saying which', async () => {
  const path = `/api/v1/jobs/${seeded.a.jobId}`;
  const cases: [string | undefined, RegExp][] = [
    ['not-a-token', /malformed/],
    [`sol_${'A'.repeat(43)}`, /^unknown token$/],
    [t.revoked, /token "revoked" was revoked/],
    [t.expired, /token "expired" expired at /],
  ];
  for (const [token, message] of cases) {
    const r = await call('GET', path, { token });
    expect({ token, status: r.status }).toEqual({ token, status: 401 });
    expect(r.json.error?.message).toMatch(message);
  }
  const basic = await fetch(`${page.url}${path}`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
  expect(basic.status).toBe(401);
  // The same token works once it is valid: the 401s were about the token, not the route.
  expect((await call('GET', path, { token: t.readAll })).status).toBe(200);
});

test('a read token cannot cancel or rerun (403), and nothing changes', async () => {
  const before = await pipelineCount();
  for (const path of [
    `/api/v1/pipelines/${seeded.a.pipelineId}/cancel`,
    `/api/v1/pipelines/${seeded.a.pipelineId}/rerun`,
    `/api/v1/jobs/${seeded.a.jobId}/cancel`,
  ]) {
    for (const token of [t.readAll, t.readA]) {
      const r = await call('POST', path, { token });
      expect({ path, status: r.status, code: r.json.error?.code }).toEqual({
        path,
        status: 403,
        code: 'forbidden',
      });
      expect(r.json.error?.message).toMatch(/needs a token with scope write/);
    }
  }
  const enqueue = await call('POST', '/api/v1/pipelines', {
    token: t.readA,
    body: { repo: REPO_A, commit: 'c'.repeat(40) },
  });
  expect(enqueue.status).toBe(403);
  expect(await pipelineCount()).toBe(before);
  expect((await h.pipelines.getPipeline(seeded.a.pipelineId))?.state).toBe('running');
  expect((await h.jobs.getJob(seeded.a.jobId))?.state).toBe('running');
});

test("a token for repository A gets for B's runs exactly what a missing id gets, on every route", async () => {
  const before = await pipelineCount();
  const missing = { pipelineId: randomUUID(), jobId: randomUUID() };
  const ofB = everyRoute(seeded.b);
  const ofMissing = everyRoute(missing);
  for (const [i, route] of ofB.entries()) {
    // Lists and validation name no run; lists are checked below.
    if (!route.path.includes(seeded.b.pipelineId) && !route.path.includes(seeded.b.jobId)) continue;
    for (const token of [t.readA, t.writeA]) {
      const r = await call(route.method, route.path, { token, body: route.body });
      const m = await call(ofMissing[i].method, ofMissing[i].path, { token, body: ofMissing[i].body });
      expect({ route, status: r.status }).toEqual({ route, status: 404 });
      expect(r.json.error?.message.replace(seeded.b.pipelineId, 'ID').replace(seeded.b.jobId, 'ID')).toBe(
        m.json.error?.message.replace(missing.pipelineId, 'ID').replace(missing.jobId, 'ID'),
      );
    }
  }
  // Enqueueing for B with A's write token: 404 as for any repository it does not know.
  const enqueue = await call('POST', '/api/v1/pipelines', {
    token: t.writeA,
    body: { repo: REPO_B, commit: 'c'.repeat(40) },
  });
  expect(enqueue.status).toBe(404);
  expect(await pipelineCount()).toBe(before);

  // Lists show A's runs only; a token for every repository sees both.
  for (const list of ['pipelines', 'jobs']) {
    const mine = await call('GET', `/api/v1/${list}?per_page=100`, { token: t.readA });
    const repos = new Set((mine.json.items as { repoUrl: string }[]).map((x) => x.repoUrl));
    expect([...repos]).toEqual([REPO_A]);
    const all = await call('GET', `/api/v1/${list}?per_page=100`, { token: t.readAll });
    expect(new Set((all.json.items as { repoUrl: string }[]).map((x) => x.repoUrl))).toEqual(
      new Set([REPO_A, REPO_B]),
    );
  }
  // And A's own runs read fine with A's token: status, log window, artifacts.
  const job = await call('GET', `/api/v1/jobs/${seeded.a.jobId}`, { token: t.readA });
  expect(job.json).toMatchObject({ id: seeded.a.jobId, state: 'running', name: 'build', logLines: 3 });
  const window = await call('GET', `/api/v1/jobs/${seeded.a.jobId}/log?after=1&limit=1`, { token: t.readA });
  expect(window.json).toMatchObject({
    lines: [{ seq: 2, text: `line 2 of ${REPO_A}` }],
    lastSeq: 3,
    next: 2,
  });
  const art = await call('GET', `/api/v1/jobs/${seeded.a.jobId}/artifacts/dist/out.txt`, { token: t.readA });
  expect([art.status, art.text]).toEqual([200, 'built\n']);
});

test('bad input gets a clear 4xx and changes nothing', async () => {
  const before = await pipelineCount();
  const jobPath = `/api/v1/jobs/${seeded.a.jobId}`;
  const cases: {
    what: string;
    method?: string;
    path: string;
    body?: unknown;
    rawBody?: string;
    contentType?: string;
    status: number;
    message: RegExp;
  }[] = [
    {
      what: 'unknown filter',
      path: '/api/v1/pipelines?colour=red',
      status: 400,
      message: /unknown query field colour/,
    },
    {
      what: 'unknown filter on jobs',
      path: '/api/v1/jobs?repo=a&owner=x',
      status: 400,
      message: /unknown query field owner/,
    },
    { what: 'negative page', path: '/api/v1/pipelines?page=-1', status: 400, message: /query page/ },
    { what: 'page 0', path: '/api/v1/jobs?page=0', status: 400, message: /query page/ },
    { what: 'page not a number', path: '/api/v1/jobs?page=two', status: 400, message: /query page/ },
    {
      what: 'page size over the bound',
      path: '/api/v1/pipelines?per_page=1000',
      status: 400,
      message: /query per_page/,
    },
    { what: 'unknown state', path: '/api/v1/jobs?state=exploded', status: 400, message: /query state/ },
    {
      what: 'repeated filter',
      path: '/api/v1/jobs?state=success&state=failure',
      status: 400,
      message: /query state/,
    },
    {
      what: 'huge query string',
      path: `/api/v1/pipelines?repo=${'x'.repeat(10_000)}`,
      status: 414,
      message: /at most 4096/,
    },
    {
      what: 'long filter value',
      path: `/api/v1/pipelines?repo=${'x'.repeat(300)}`,
      status: 400,
      message: /query repo/,
    },
    {
      what: 'id prefix',
      path: `/api/v1/jobs/${seeded.a.jobId.slice(0, 8)}`,
      status: 400,
      message: /whole id/,
    },
    { what: 'negative log window', path: `${jobPath}/log?after=-5`, status: 400, message: /query after/ },
    {
      what: 'log window over the bound',
      path: `${jobPath}/log?limit=100000`,
      status: 400,
      message: /query limit/,
    },
    {
      what: 'traversal, encoded',
      path: `${jobPath}/artifacts/..%2F..%2F..%2Fetc%2Fpasswd`,
      status: 400,
      message: /is not allowed/,
    },
    {
      what: 'traversal inside the path',
      path: `${jobPath}/artifacts/dist/..%2F..%2Fx`,
      status: 400,
      message: /is not allowed/,
    },
    {
      what: 'absolute artifact path',
      path: `${jobPath}/artifacts/%2Fetc%2Fpasswd`,
      status: 400,
      message: /is not allowed/,
    },
    {
      what: 'NUL in artifact path',
      path: `${jobPath}/artifacts/a%00b`,
      status: 400,
      message: /control characters/,
    },
    {
      what: 'unknown body field',
      method: 'POST',
      path: `/api/v1/pipelines/${seeded.a.pipelineId}/rerun`,
      body: { failed: true, everything: true },
      status: 400,
      message: /unknown body field everything/,
    },
    {
      what: 'body of the wrong type',
      method: 'POST',
      path: `/api/v1/pipelines/${seeded.a.pipelineId}/rerun`,
      body: { failed: 'yes' },
      status: 400,
      message: /body failed/,
    },
    {
      what: 'short commit',
      method: 'POST',
      path: '/api/v1/pipelines',
      body: { repo: REPO_A, commit: 'abc123' },
      status: 400,
      message: /40-character/,
    },
    {
      what: 'body over the limit',
      method: 'POST',
      path: '/api/v1/pipelines',
      body: { repo: REPO_A, commit: 'c'.repeat(40), inputs: { big: 'x'.repeat(20_000) } },
      status: 413,
      message: /.+/,
    },
    {
      what: 'malformed JSON',
      method: 'POST',
      path: `/api/v1/pipelines/${seeded.a.pipelineId}/rerun`,
      rawBody: '{"failed": tru',
      status: 400,
      message: /.+/,
    },
    {
      what: 'not JSON',
      method: 'POST',
      path: `/api/v1/pipelines/${seeded.a.pipelineId}/rerun`,
      rawBody: 'failed=true',
      contentType: 'application/x-www-form-urlencoded',
      status: 415,
      message: /.+/,
    },
    {
      what: 'unknown route',
      path: '/api/v1/nothing-here',
      status: 404,
      message: /no route GET \/api\/v1\/nothing-here/,
    },
  ];
  for (const c of cases) {
    const r = await call(c.method ?? 'GET', c.path, {
      token: t.writeA,
      body: c.body,
      rawBody: c.rawBody,
      contentType: c.contentType,
    });
    expect({ what: c.what, status: r.status, shape: typeof r.json.error?.message }).toEqual({
      what: c.what,
      status: c.status,
      shape: 'string',
    });
    expect({ what: c.what, message: r.json.error?.message }).toEqual({
      what: c.what,
      message: expect.stringMatching(c.message),
    });
    expect(r.json.error?.status).toBe(c.status);
  }
  // A client that sends `..` as it is (curl --path-as-is; fetch would resolve it first).
  const raw = await rawGet(`${jobPath}/artifacts/../../../../etc/passwd`, t.writeA);
  expect([raw.status, raw.body]).toEqual([400, expect.stringContaining('is not allowed')]);
  expect(await pipelineCount()).toBe(before);
  expect((await h.pipelines.getPipeline(seeded.a.pipelineId))?.state).toBe('running');
});

function rawGet(path: string, token: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(page.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { hostname, port, path, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('pagination is bounded and pages do not overlap', async () => {
  const first = await call('GET', '/api/v1/jobs?per_page=1', { token: t.readAll });
  const second = await call('GET', '/api/v1/jobs?per_page=1&page=2', { token: t.readAll });
  expect(first.json).toMatchObject({ page: 1, per_page: 1, next_page: 2 });
  const ids = [first, second].map((r) => (r.json.items as { id: string }[])[0]?.id);
  expect(ids[0]).not.toBe(ids[1]);
  const far = await call('GET', '/api/v1/jobs?per_page=100&page=9999', { token: t.readAll });
  expect(far.json).toMatchObject({ items: [], next_page: null });
});

test('validate a workflow file', async () => {
  const ok = await call('POST', '/api/v1/workflow/validate', {
    token: t.readA,
    body: { content: 'job "a" { step "s" run="true" }\n' },
  });
  expect(ok.json).toMatchObject({ ok: true, errors: 0 });
  const bad = await call('POST', '/api/v1/workflow/validate', {
    token: t.readA,
    body: { content: 'job "a" { needs "nope"\n step "s" run="true" }\n' },
  });
  expect(bad.json).toMatchObject({ ok: false });
  expect(JSON.stringify(bad.json.diagnostics)).toContain('nope');
});

test('a write token enqueues a commit, follows its log over SSE, reads it back, reruns what failed and cancels', async () => {
  const repo = makeRepo({
    '.solstice/workflow.kdl': `
      job "build" {
        artifacts "out.txt"
        step "make" run="echo building; echo built > out.txt"
      }
      job "check" {
        needs "build"
        step "fails" run="echo checking; exit 3"
      }
    `,
  });
  const entry = repo.dir.replace(/^\/+/, '').split('/').slice(-2).join('/');
  const write = (await tokens.create({ name: 'write-local', scope: 'write', repos: [entry] })).token;
  const started = await call('POST', '/api/v1/pipelines', {
    token: write,
    body: { repo: repo.dir, commit: repo.sha, ref: 'refs/heads/main' },
  });
  expect(started.status).toBe(201);
  const pipelineId = started.json.pipelineId as string;
  expect(pipelineId).toMatch(/^[0-9a-f-]{36}$/);

  let buildJob: string | undefined;
  await waitFor(
    async () => {
      const p = await call('GET', `/api/v1/pipelines/${pipelineId}`, { token: write });
      buildJob =
        (p.json.jobs as { name: string; jobId: string | null }[] | undefined)?.find((j) => j.name === 'build')
          ?.jobId ?? undefined;
      return buildJob !== undefined;
    },
    120_000,
    'the build job to start',
  );
  // The event stream ends when the job does: its lines, then `end` with the state.
  const events = await call('GET', `/api/v1/jobs/${buildJob}/log/events`, { token: write });
  expect(events.text).toMatch(/^id: /);
  expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
  expect(events.text).toContain('"text":"building"');
  expect(events.text).toMatch(/event: end\ndata: \{"state":"success","exitCode":0,"final":true\}/);
  const window = await call('GET', `/api/v1/jobs/${buildJob}/log?limit=5000`, { token: write });
  expect((window.json.lines as { text: string }[]).map((l) => l.text)).toContain('building');
  const list = await call('GET', `/api/v1/jobs/${buildJob}/artifacts`, { token: write });
  expect((list.json.items as { path: string }[]).map((a) => a.path)).toEqual(['out.txt']);
  const artifact = await call('GET', `/api/v1/jobs/${buildJob}/artifacts/out.txt`, { token: write });
  expect([artifact.status, artifact.text]).toEqual([200, 'built\n']);
  // A download, never rendered: what a job wrote could be markup.
  expect(
    Object.fromEntries(
      ['content-type', 'content-disposition', 'x-content-type-options'].map((k) => [
        k,
        artifact.headers.get(k),
      ]),
    ),
  ).toEqual({
    'content-type': 'application/octet-stream',
    'content-disposition': "attachment; filename*=UTF-8''out.txt",
    'x-content-type-options': 'nosniff',
  });

  await waitFor(
    async () =>
      (await call('GET', `/api/v1/pipelines/${pipelineId}`, { token: write })).json.state === 'failure',
    120_000,
    'the pipeline to fail',
  );
  const rerun = await call('POST', `/api/v1/pipelines/${pipelineId}/rerun`, {
    token: write,
    body: { failed: true },
  });
  expect(rerun.status).toBe(201);
  expect(rerun.json.reused).toEqual(['build']);
  const again = rerun.json.pipelineId as string;
  await waitFor(
    async () => (await call('GET', `/api/v1/pipelines/${again}`, { token: write })).json.state === 'failure',
    120_000,
    'the rerun to fail again',
  );
  const ended = await call('POST', `/api/v1/pipelines/${again}/cancel`, { token: write });
  expect([ended.status, ended.json.error?.code]).toEqual([409, 'conflict']);

  // Cancelling a running pipeline: accepted, and it ends cancelled.
  const slow = makeRepo({
    '.solstice/workflow.kdl': 'job "slow" { step "s" run="echo sleeping; sleep 120" }\n',
  });
  const slowToken = (
    await tokens.create({
      name: 'write-slow',
      scope: 'write',
      repos: [slow.dir.replace(/^\/+/, '').split('/').slice(-2).join('/')],
    })
  ).token;
  const s = await call('POST', '/api/v1/pipelines', {
    token: slowToken,
    body: { repo: slow.dir, commit: slow.sha },
  });
  expect(s.status).toBe(201);
  await waitFor(
    async () =>
      (await call('GET', `/api/v1/pipelines/${s.json.pipelineId as string}`, { token: slowToken })).status ===
      200,
    60_000,
    'the pipeline to be recorded',
  );
  const cancel = await call('POST', `/api/v1/pipelines/${s.json.pipelineId as string}/cancel`, {
    token: slowToken,
  });
  expect(cancel.status).toBe(202);
  await waitFor(
    async () =>
      (await call('GET', `/api/v1/pipelines/${s.json.pipelineId as string}`, { token: slowToken })).json
        .state === 'cancelled',
    120_000,
    'the pipeline to end cancelled',
  );
}, 400_000);
