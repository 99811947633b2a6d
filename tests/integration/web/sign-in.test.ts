/**
 * Sign-in and access against a real Gitea (devstack/gitea.ts, SQLite): an OAuth2
 * application, a user with write access to a private repository and one without, a public
 * repository; real pipelines on the local provider cloning from Gitea.
 *
 * In headless Chromium the user signs in on Gitea's own login page, sees the private
 * repository's pipelines, the graph and the job page with its live log, and reruns the
 * pipeline. Then every route the server has is asked, as an anonymous visitor and as the
 * signed-in user without access, for that repository's runs: all 404. A form without its
 * CSRF token (or with another session's) changes nothing, and a cookie kept after logout
 * signs nobody in.
 */
import fs from 'node:fs';
import type { Browser, BrowserContext } from 'playwright-core';
import { createLogger } from '../../../platform/logger';
import { freePort } from '../../../platform/net';
import { FsBlobStore } from '../../../storage/blob-store';
import { pipelineActions, webAccessFromConfig } from '../../../web/job-page/from-config';
import { startJobPage, type RunningJobPage } from '../../../web/job-page/server';
import { SESSION_COOKIE } from '../../../web/sign-in/session';
import { launchBrowser } from '../../support/browser';
import { startGitea, type Gitea, type GiteaRepo, type GiteaUser } from '../../../devstack/gitea';
import { startHarness, type Harness } from '../../support/harness';
import { gatePath, waitFor } from '../../support/wait';

jest.setTimeout(10 * 60_000);

const log = createLogger('test');
log.level = 'warn';

let gitea: Gitea;
let h: Harness;
let page: RunningJobPage;
let browser: Browser;
let alice: GiteaUser;
let bob: GiteaUser;
let secret: GiteaRepo;
let open: GiteaRepo;
let gate: string;
/** The private repository's first pipeline, its gated `build` job, and that job's artifact. */
let pipelineId: string;
let buildJobId: string;

const workflow = (gateFile: string) => `
job "build" {
  runs-on "local"
  step "tick" run="i=0; while [ ! -e ${gateFile} ]; do i=$((i+1)); echo tick $i; sleep 0.3; done; echo built > out.txt"
  artifacts "out.txt"
}
job "test" {
  needs "build"
  runs-on "local"
  step "t" run="echo tested"
}
job "deploy" {
  needs "test"
  runs-on "local"
  when {
    events "tag"
  }
  step "d" run="echo deployed"
}
`;

beforeAll(async () => {
  gitea = await startGitea();
  h = await startHarness({ forgejoToken: gitea.admin.token });
  await h.startWorker();
  alice = await gitea.createUser('alice');
  bob = await gitea.createUser('bob');
  secret = await gitea.createRepo('secret-app', { private: true });
  open = await gitea.createRepo('open-app');
  await gitea.addCollaborator(secret, 'alice', 'write');

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const app = await gitea.api<{ client_id: string; client_secret: string }>(
    'POST',
    '/user/applications/oauth2',
    { name: 'solstice', redirect_uris: [`${url}/login/forgejo/callback`], confidential_client: true },
  );
  const cfg = {
    ...h.cfg,
    oauthForgejoUrl: gitea.url,
    oauthForgejoClientId: app.client_id,
    oauthForgejoClientSecret: app.client_secret,
    publicUrl: url,
  };
  page = await startJobPage({
    addr: `127.0.0.1:${port}`,
    jobs: h.jobs,
    blobs: new FsBlobStore(h.cfg.blobFsRoot),
    log,
    pollMs: 100,
    access: webAccessFromConfig(cfg, h.db, log),
    actions: pipelineActions(h.client, h.cfg, h.db),
  });

  gate = gatePath();
  const sha = await gitea.push(secret, { '.solstice/workflow.kdl': workflow(gate) });
  ({ pipelineId } = await h.startPipeline(secret.cloneUrl, sha, {
    source: 'forgejo',
    ref: 'refs/heads/main',
  }));
  await waitFor(
    async () => Boolean((await h.pipelines.listJobs(pipelineId)).find((j) => j.name === 'build')?.jobId),
    120_000,
    'the build job to start',
  );
  buildJobId = (await h.pipelines.listJobs(pipelineId)).find((j) => j.name === 'build')?.jobId as string;
  browser = await launchBrowser();
});

afterAll(async () => {
  if (gate) fs.writeFileSync(gate, '');
  await browser?.close();
  await page?.close();
  await h?.close();
  await gitea?.stop();
});

/** Signs `user` in through Gitea's login and consent pages; lands on `next`. */
async function signIn(user: GiteaUser, next: string): Promise<BrowserContext> {
  const ctx = await browser.newContext();
  const tab = await ctx.newPage();
  await tab.goto(`${page.url}/login?next=${encodeURIComponent(next)}`);
  await tab.getByRole('link', { name: 'Sign in with Forgejo / Gitea' }).click();
  await tab.waitForURL(`${gitea.url}/**`);
  await tab.fill('#user_name', user.name);
  await tab.fill('#password', user.password);
  await tab.press('#password', 'Enter');
  // Gitea asks once per user and application.
  const grant = tab.locator('#authorize-app');
  await Promise.race([
    grant.waitFor({ timeout: 30_000 }),
    tab.waitForURL(`${page.url}/**`, { timeout: 30_000 }),
  ]);
  if (await grant.isVisible()) await grant.click();
  await tab.waitForURL(`${page.url}${next}`);
  await tab.close();
  return ctx;
}

async function cookieOf(ctx: BrowserContext): Promise<string> {
  const c = (await ctx.cookies(page.url)).find((x) => x.name === SESSION_COOKIE);
  if (!c) throw new Error('no session cookie');
  expect(c.httpOnly).toBe(true);
  expect(c.sameSite).toBe('Lax');
  return `${SESSION_COOKIE}=${c.value}`;
}

/** The CSRF token the pages give this session's forms. */
async function csrfOf(cookie: string): Promise<string> {
  const html = await (await fetch(`${page.url}/pipelines`, { headers: { cookie } })).text();
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no CSRF token on the page');
  return m[1];
}

const post = (path: string, form: Record<string, string>, cookie?: string) =>
  fetch(`${page.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(form).toString(),
  });

let aliceCtx: BrowserContext;

test('a user signs in through Gitea, follows the live log, and reruns the pipeline', async () => {
  const repoPath = `/repos/${secret.owner}/${secret.name}`;
  aliceCtx = await signIn(alice, repoPath);
  const tab = await aliceCtx.newPage();
  await tab.goto(`${page.url}${repoPath}`);
  await tab.locator(`a[href="/pipelines/${pipelineId}"]`).click();
  await tab.waitForURL(`${page.url}/pipelines/${pipelineId}`);
  // The graph: one box per job, an arrow per need, the skipped deploy saying why.
  await tab.locator('svg#graph g.job[data-job="build"]').waitFor();
  expect(await tab.locator('svg#graph path.need').count()).toBe(2);
  expect(await tab.locator('svg#graph g.job[data-job="test"]').count()).toBe(1);

  // The build job's page follows its log while it runs.
  await tab.locator('svg#graph a g.job[data-job="build"]').click();
  await tab.waitForURL(`${page.url}/jobs/${buildJobId}`);
  await tab
    .locator('#log .ln', { hasText: /tick \d+/ })
    .first()
    .waitFor();
  const seen = async () => tab.locator('#log .ln', { hasText: /tick \d+/ }).count();
  const before = await seen();
  await waitFor(async () => (await seen()) > before + 2, 30_000, 'new log lines on the open page');

  fs.writeFileSync(gate, '');
  await waitFor(
    async () => (await h.pipelines.getPipeline(pipelineId))?.state === 'success',
    180_000,
    'the pipeline to succeed',
  );
  await tab.goto(`${page.url}/pipelines/${pipelineId}`);
  await tab.locator('#rerun').click();
  await tab.waitForURL(
    (u) => /\/pipelines\/[0-9a-f-]{36}$/.test(u.pathname) && !u.pathname.endsWith(pipelineId),
  );
  const rerunId = new URL(tab.url()).pathname.split('/').pop() as string;
  expect((await h.pipelines.getPipeline(rerunId))?.rerunOf).toBe(pipelineId);
  expect(await tab.locator('header').textContent()).toContain(`rerun of ${pipelineId}`);
  await tab.goto(`${page.url}${repoPath}`);
  expect(await tab.locator(`a[href="/pipelines/${rerunId}"]`).count()).toBe(1);
});

test('every route of the private repository is 404 for anonymous visitors and users without access', async () => {
  const bobCtx = await signIn(bob, '/pipelines');
  const bobCookie = await cookieOf(bobCtx);
  const bobCsrf = await csrfOf(bobCookie);
  const aliceCookie = await cookieOf(aliceCtx);
  const fill = (url: string): string | undefined => {
    if (url.includes(':forge') || !/[:*]/.test(url)) return undefined; // not a route of a run
    return url
      .replace(/^\/jobs\/:id/, `/jobs/${buildJobId}`)
      .replace(/^\/pipelines\/:id/, `/pipelines/${pipelineId}`)
      .replace(':owner', secret.owner)
      .replace(':repo', secret.name)
      .replace('*', 'out.txt');
  };
  const routes = page.routes
    .map((r) => ({ method: r.method, path: fill(r.url) }))
    .filter((r): r is { method: string; path: string } => r.path !== undefined);
  // What the server has today; a new route of a run joins the walk by itself.
  expect(routes.map((r) => `${r.method} ${r.path.replace(/[0-9a-f-]{36}/g, '<id>')}`).sort()).toEqual(
    [
      'GET /badge/solstice-admin/secret-app.svg',
      'GET /jobs/<id>',
      'GET /jobs/<id>/artifacts/out.txt',
      'GET /jobs/<id>/events',
      'GET /jobs/<id>/log.txt',
      'GET /pipelines/<id>',
      'GET /repos/solstice-admin/secret-app',
      'POST /pipelines/<id>/cancel',
      'POST /pipelines/<id>/rerun',
    ].sort(),
  );
  const pipelinesBefore = await h.db.pipeline.count();
  for (const r of routes) {
    const ask = (cookie?: string) =>
      r.method === 'GET'
        ? fetch(`${page.url}${r.path}`, { headers: cookie ? { cookie } : {}, redirect: 'manual' })
        : post(r.path, cookie ? { _csrf: bobCsrf } : {}, cookie);
    const anonymous = await ask();
    const withoutAccess = await ask(bobCookie);
    // The repository's own list exists for everyone, but shows none of its pipelines.
    if (r.path.startsWith('/repos/')) {
      for (const res of [anonymous, withoutAccess]) {
        expect(res.status).toBe(200);
        expect(await res.text()).not.toContain(pipelineId);
      }
    } else {
      expect({ route: `${r.method} ${r.path}`, status: anonymous.status }).toEqual({
        route: `${r.method} ${r.path}`,
        status: 404,
      });
      expect({ route: `${r.method} ${r.path}`, status: withoutAccess.status }).toEqual({
        route: `${r.method} ${r.path}`,
        status: 404,
      });
    }
    // The same route works for the user who has access: the walk asks for things that exist.
    if (r.method === 'GET') {
      const res = await fetch(`${page.url}${r.path}`, { headers: { cookie: aliceCookie } });
      expect({ route: r.path, status: res.status }).toEqual({ route: r.path, status: 200 });
      if (r.path.startsWith('/repos/')) expect(await res.text()).toContain(pipelineId);
      else await res.arrayBuffer();
    }
  }
  for (const cookie of [undefined, bobCookie]) {
    const html = await (await fetch(`${page.url}/pipelines`, { headers: cookie ? { cookie } : {} })).text();
    expect(html).not.toContain(pipelineId);
  }
  expect(await h.db.pipeline.count()).toBe(pipelinesBefore);
  await bobCtx.close();
});

test('a form without its session’s CSRF token changes nothing; a cookie kept after logout signs nobody in', async () => {
  const cookie = await cookieOf(aliceCtx);
  const csrf = await csrfOf(cookie);
  const before = await h.db.pipeline.count();
  const otherCtx = await signIn(bob, '/pipelines');
  const bobCsrf = await csrfOf(await cookieOf(otherCtx));
  await otherCtx.close();
  const forms: Record<string, string>[] = [{}, { _csrf: 'forged' }, { _csrf: bobCsrf }];
  for (const form of forms) {
    const res = await post(`/pipelines/${pipelineId}/rerun`, form, cookie);
    expect(res.status).toBe(403);
  }
  expect(await h.db.pipeline.count()).toBe(before);

  const stolen = cookie;
  const out = await post('/logout', { _csrf: csrf }, cookie);
  expect(out.status).toBe(303);
  const after = await fetch(`${page.url}/pipelines/${pipelineId}`, { headers: { cookie: stolen } });
  expect(after.status).toBe(404);
  const row = await h.db.webSession.findFirst({ where: { login: 'alice' }, orderBy: { createdAt: 'desc' } });
  expect(row?.revokedAt).not.toBeNull();
});

test('a public repository is readable anonymously, its badge cacheable; changing it needs a session', async () => {
  const sha = await gitea.push(open, {
    '.solstice/workflow.kdl': 'job "a" {\n  runs-on "local"\n  step "a" run="echo hi"\n}\n',
  });
  const started = await h.startPipeline(open.cloneUrl, sha, { source: 'forgejo', ref: 'refs/heads/main' });
  const p = await h.pipelineResult(started.workflowId, started.pipelineId);
  expect(p.state).toBe('success');
  expect((await fetch(`${page.url}/pipelines/${p.id}`)).status).toBe(200);
  const badge = await fetch(`${page.url}/badge/${open.owner}/${open.name}.svg?branch=main`);
  expect(badge.status).toBe(200);
  expect(badge.headers.get('content-type')).toContain('image/svg+xml');
  expect(badge.headers.get('cache-control')).toBe('public, max-age=60');
  expect(await badge.text()).toContain('>success</text>');
  const etag = badge.headers.get('etag') as string;
  expect(
    (
      await fetch(`${page.url}/badge/${open.owner}/${open.name}.svg?branch=main`, {
        headers: { 'if-none-match': etag },
      })
    ).status,
  ).toBe(304);
  const before = await h.db.pipeline.count();
  expect((await post(`/pipelines/${p.id}/rerun`, {})).status).toBe(403);
  expect(await h.db.pipeline.count()).toBe(before);
  // Whole ids only: a prefix finds nothing.
  expect((await fetch(`${page.url}/pipelines/${p.id.slice(0, 8)}`)).status).toBe(400);
  expect((await fetch(`${page.url}/jobs/${buildJobId.slice(0, 4)}`)).status).toBe(400);
});
