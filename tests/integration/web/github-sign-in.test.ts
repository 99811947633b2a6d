/**
 * Sign-in through GitHub, which cannot run here: a stand-in for github.com's OAuth endpoints and
 * its REST API (recorded payloads, forges/github/fixtures) that checks what the real one checks:
 * the client's credentials, the code it issued, and the PKCE verifier against the S256 challenge
 * of the authorization request. The pages' side is real: database sessions, cookies, the
 * permission lookups and the 404s.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ForgeBackedPermissions } from '../../../access/forge-permissions';
import { loadConfig } from '../../../platform/config';
import { createLogger } from '../../../platform/logger';
import { FsBlobStore } from '../../../storage/blob-store';
import { createDb, type Db } from '../../../storage/db';
import { JobStore } from '../../../storage/job-store';
import { SessionStore } from '../../../storage/session-store';
import { startJobPage, type RunningJobPage } from '../../../web/job-page/server';
import type { SignInProvider } from '../../../web/sign-in/providers';
import { SESSION_COOKIE } from '../../../web/sign-in/session';
import { createTestDatabase, type TestDatabase } from '../../support/database';

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(
    fs.readFileSync(path.join(__dirname, '../../../forges/github/fixtures', name), 'utf8'),
  ) as Record<string, unknown>;

const log = createLogger('test');
log.level = 'fatal';

let database: TestDatabase;
let db: Db;
let tmp: string;
let page: RunningJobPage;
let github: http.Server;
let githubUrl: string;
/** What the stand-in saw and issued. */
const issued = new Map<string, { challenge: string; redirectUri: string; login: string }>();
const tokens = new Map<string, string>();
let tokenRequests: { auth: string | undefined; body: URLSearchParams }[] = [];
let authorizeRequests: URLSearchParams[] = [];
/** Who the stand-in signs in next (its "login page"). */
let nextLogin = 'alice';

let privatePipeline: string;

async function startStandIn(): Promise<void> {
  github = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === '/login/oauth/authorize') {
        // GitHub would show its login and consent pages here; the stand-in consents at once.
        authorizeRequests.push(url.searchParams);
        const code = randomUUID();
        const redirectUri = url.searchParams.get('redirect_uri') as string;
        issued.set(code, {
          challenge: url.searchParams.get('code_challenge') as string,
          redirectUri,
          login: nextLogin,
        });
        const back = new URL(redirectUri);
        back.searchParams.set('code', code);
        back.searchParams.set('state', url.searchParams.get('state') as string);
        res.writeHead(302, { location: back.toString() }).end();
        return;
      }
      if (url.pathname === '/login/oauth/access_token' && req.method === 'POST') {
        const body = new URLSearchParams(raw);
        tokenRequests.push({ auth: req.headers.authorization, body });
        const grant = issued.get(body.get('code') ?? '');
        const basic = `Basic ${Buffer.from('gh-client:gh-secret').toString('base64')}`;
        const verifier = body.get('code_verifier') ?? '';
        const challenge = createHash('sha256').update(verifier).digest('base64url');
        if (
          !grant ||
          req.headers.authorization !== basic ||
          grant.challenge !== challenge ||
          grant.redirectUri !== body.get('redirect_uri')
        )
          return json(400, {
            error: 'bad_verification_code',
            error_description: 'The code passed is incorrect or expired.',
          });
        issued.delete(body.get('code') as string);
        const token = `gho_${randomUUID().replace(/-/g, '')}`;
        tokens.set(token, grant.login);
        return json(200, { access_token: token, token_type: 'bearer', scope: 'read:user,repo' });
      }
      const login = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
      if (url.pathname === '/user') return login ? json(200, { login, id: 1, type: 'User' }) : json(401, {});
      if (url.pathname === '/repos/octo-org/secret-app')
        return login === 'alice'
          ? json(200, fixture('github-repo-private-as-writer.json'))
          : json(404, fixture('github-not-found.json'));
      if (url.pathname === '/repos/octocat/hello-world') return json(200, fixture('github-repo-public.json'));
      return json(404, fixture('github-not-found.json'));
    });
  });
  await new Promise<void>((r) => github.listen(0, '127.0.0.1', r));
  githubUrl = `http://127.0.0.1:${(github.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  await startStandIn();
  database = await createTestDatabase();
  db = createDb(loadConfig({ databaseUrl: database.url }, {}));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-gh-sign-in-'));
  const blobs = new FsBlobStore(tmp);
  const sessions = new SessionStore(db);
  const provider: SignInProvider = {
    forge: 'github',
    title: 'GitHub',
    webUrl: githubUrl,
    apiUrl: githubUrl,
    clientId: 'gh-client',
    clientSecret: 'gh-secret',
    scopes: ['read:user', 'repo'],
  };
  const forge = new ForgeBackedPermissions({
    // Runs name the repository as github.com does; the stand-in answers for it.
    sites: [{ forge: 'github', webUrl: 'https://github.com', apiUrl: githubUrl }],
    userToken: (f, l) => sessions.userToken(f, l),
    cacheMs: 60_000,
    log,
  });
  page = await startJobPage({
    addr: '127.0.0.1:0',
    jobs: new JobStore(db, blobs),
    blobs,
    log,
    trustProxy: true,
    access: {
      sources: { forge, anonymousRead: 'public' },
      signIn: { providers: [provider], sessions, sessionTtlMs: 3_600_000, log },
    },
  });
  privatePipeline = randomUUID();
  await db.pipeline.create({
    data: {
      id: privatePipeline,
      workflowId: `test/${privatePipeline}`,
      repoUrl: 'https://github.com/octo-org/secret-app.git',
      commitSha: 'a'.repeat(40),
      ref: 'refs/heads/main',
      state: 'success',
    },
  });
});

afterAll(async () => {
  await page?.close();
  await db?.$disconnect();
  await database?.drop();
  await new Promise((r) => github?.close(r));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const cookiesOf = (res: Response) => res.headers.getSetCookie();
const cookieHeader = (setCookies: string[]) => setCookies.map((c) => c.split(';')[0]).join('; ');

/** The whole browser dance with manual redirects; returns the callback's answer. */
async function signIn(opts: { tamperState?: boolean; tamperCode?: boolean; proto?: string } = {}) {
  const headers: Record<string, string> = opts.proto ? { 'x-forwarded-proto': opts.proto } : {};
  const start = await fetch(`${page.url}/login/github?next=/pipelines/${privatePipeline}`, {
    redirect: 'manual',
    headers,
  });
  expect(start.status).toBe(302);
  const flowCookies = cookiesOf(start);
  const authorize = await fetch(start.headers.get('location') as string, { redirect: 'manual' });
  expect(authorize.status).toBe(302);
  const back = new URL(authorize.headers.get('location') as string);
  if (opts.tamperState) back.searchParams.set('state', 'forged-state');
  if (opts.tamperCode) back.searchParams.set('code', randomUUID());
  // The callback URL names the public scheme; the request reaches the server over plain http.
  const callback = `${page.url}${back.pathname}${back.search}`;
  const res = await fetch(callback, {
    redirect: 'manual',
    headers: { ...headers, cookie: cookieHeader(flowCookies) },
  });
  return { flowCookies, res };
}

test('sign-in with PKCE and state opens a session that reads what the user may read', async () => {
  nextLogin = 'alice';
  tokenRequests = [];
  authorizeRequests = [];
  const { flowCookies, res } = await signIn();
  expect(authorizeRequests).toHaveLength(1);
  const asked = authorizeRequests[0];
  expect(asked.get('client_id')).toBe('gh-client');
  expect(asked.get('response_type')).toBe('code');
  expect(asked.get('code_challenge_method')).toBe('S256');
  expect(asked.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(asked.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
  expect(asked.get('scope')).toBe('read:user repo');
  expect(flowCookies[0]).toMatch(/^solstice_oauth=.*; Max-Age=600; Path=\/login; HttpOnly; SameSite=Lax$/);
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toBe(`/pipelines/${privatePipeline}`);
  expect(tokenRequests).toHaveLength(1);
  expect(tokenRequests[0].body.get('grant_type')).toBe('authorization_code');
  const session = cookiesOf(res).find((c) => c.startsWith(`${SESSION_COOKIE}=`)) as string;
  expect(session).toMatch(/HttpOnly/);
  expect(session).toMatch(/SameSite=Lax/);
  expect(session).not.toMatch(/Secure/);
  const cookie = session.split(';')[0];
  // Only the token's hash is stored.
  const token = cookie.split('=')[1];
  expect(await db.webSession.count({ where: { id: token } })).toBe(0);
  expect(await db.webSession.count({ where: { id: createHash('sha256').update(token).digest('hex') } })).toBe(
    1,
  );

  const pageRes = await fetch(`${page.url}/pipelines/${privatePipeline}`, { headers: { cookie } });
  expect(pageRes.status).toBe(200);
  const html = await pageRes.text();
  expect(html).toContain('signed in as <strong>alice</strong>');
  expect((await fetch(`${page.url}/pipelines/${privatePipeline}`)).status).toBe(404);
});

test('a user the forge does not let read the repository gets 404', async () => {
  nextLogin = 'mallory';
  const { res } = await signIn();
  expect(res.status).toBe(303);
  const cookie = cookieHeader(cookiesOf(res).filter((c) => c.startsWith(SESSION_COOKIE)));
  expect((await fetch(`${page.url}/pipelines/${privatePipeline}`, { headers: { cookie } })).status).toBe(404);
  expect((await fetch(`${page.url}/badge/octo-org/secret-app.svg`, { headers: { cookie } })).status).toBe(
    404,
  );
});

test('a callback with another state, or a code the forge did not issue for this verifier, opens no session', async () => {
  nextLogin = 'alice';
  const before = await db.webSession.count();
  const forged = await signIn({ tamperState: true });
  expect(forged.res.status).toBe(403);
  const wrongCode = await signIn({ tamperCode: true });
  expect(wrongCode.res.status).toBe(403);
  expect(await wrongCode.res.text()).toMatch(/did not complete the sign-in/);
  // Without the flow cookie (another browser finishing this one's sign-in): refused as well.
  const start = await fetch(`${page.url}/login/github`, { redirect: 'manual' });
  const authorize = await fetch(start.headers.get('location') as string, { redirect: 'manual' });
  const back = new URL(authorize.headers.get('location') as string);
  expect((await fetch(`${page.url}${back.pathname}${back.search}`, { redirect: 'manual' })).status).toBe(403);
  expect(await db.webSession.count()).toBe(before);
});

test('cookies are Secure behind a trusted proxy that says https', async () => {
  nextLogin = 'alice';
  const { flowCookies, res } = await signIn({ proto: 'https' });
  expect(flowCookies[0]).toMatch(/; Secure/);
  expect(res.status).toBe(303);
  expect(cookiesOf(res).find((c) => c.startsWith(SESSION_COOKIE))).toMatch(/; Secure/);
});

test('an expired or revoked session signs nobody in', async () => {
  nextLogin = 'alice';
  const { res } = await signIn();
  const cookie = cookieHeader(cookiesOf(res).filter((c) => c.startsWith(SESSION_COOKIE)));
  const id = createHash('sha256').update(cookie.split('=')[1]).digest('hex');
  expect((await fetch(`${page.url}/pipelines/${privatePipeline}`, { headers: { cookie } })).status).toBe(200);
  await db.webSession.update({ where: { id }, data: { expiresAt: new Date(Date.now() - 1000) } });
  expect((await fetch(`${page.url}/pipelines/${privatePipeline}`, { headers: { cookie } })).status).toBe(404);
  await db.webSession.update({ where: { id }, data: { expiresAt: new Date(Date.now() + 60_000) } });
  expect(await new SessionStore(db).revokeUser('github', 'alice')).toBeGreaterThan(0);
  expect((await fetch(`${page.url}/pipelines/${privatePipeline}`, { headers: { cookie } })).status).toBe(404);
});

test('a public repository is read anonymously, unless SOLSTICE_ANONYMOUS_READ=none', async () => {
  const id = randomUUID();
  await db.pipeline.create({
    data: {
      id,
      workflowId: `test/${id}`,
      repoUrl: 'https://github.com/octocat/hello-world',
      commitSha: 'b'.repeat(40),
      ref: 'refs/heads/main',
      state: 'failure',
    },
  });
  expect((await fetch(`${page.url}/pipelines/${id}`)).status).toBe(200);
  const listed = await (await fetch(`${page.url}/pipelines`)).text();
  expect(listed).toContain(id);
  expect(listed).not.toContain(privatePipeline);
  const badge = await fetch(`${page.url}/badge/octocat/hello-world.svg`);
  expect(badge.headers.get('cache-control')).toBe('public, max-age=60');
  expect(await badge.text()).toContain('>failure</text>');

  const forge = new ForgeBackedPermissions({
    sites: [{ forge: 'github', webUrl: 'https://github.com', apiUrl: githubUrl }],
    userToken: () => Promise.resolve(undefined),
    cacheMs: 60_000,
    log,
  });
  const blobs = new FsBlobStore(tmp);
  const closed = await startJobPage({
    addr: '127.0.0.1:0',
    jobs: new JobStore(db, blobs),
    blobs,
    log,
    access: { sources: { forge, anonymousRead: 'none' } },
  });
  try {
    expect((await fetch(`${closed.url}/pipelines/${id}`)).status).toBe(404);
    expect((await fetch(`${closed.url}/badge/octocat/hello-world.svg`)).status).toBe(404);
    expect(await (await fetch(`${closed.url}/pipelines`)).text()).not.toContain(id);
  } finally {
    await closed.close();
  }
});

test('bad list filters are a 400 that says what is accepted, and a next= elsewhere goes home', async () => {
  for (const q of [
    '?colour=red',
    '?state=done',
    `?branch=${'x'.repeat(300)}`,
    '?before=yesterday',
    '?repo=a&repo=b',
  ]) {
    const res = await fetch(`${page.url}/pipelines${q}`);
    expect({ q, status: res.status }).toEqual({ q, status: 400 });
  }
  expect((await fetch(`${page.url}/pipelines?state=success&branch=main`)).status).toBe(200);
  const res = await fetch(`${page.url}/login/github?next=//evil.example/x`, { redirect: 'manual' });
  const flow = decodeURIComponent(cookiesOf(res)[0].split(';')[0].split('=').slice(1).join('='));
  expect(JSON.parse(flow).next).toBe('/');
});
