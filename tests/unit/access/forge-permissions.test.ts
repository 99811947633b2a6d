/**
 * ForgeBackedPermissions against a stand-in GitHub API answering with recorded payloads
 * (forges/github/fixtures): visibility without credentials, a user's permission with that
 * user's token, the cache (a revoked permission takes effect once it expires), failing closed
 * when the forge cannot be asked, and repositories no configured forge serves.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ForgeBackedPermissions } from '../../../access/forge-permissions';
import { authorize, type AccessSources } from '../../../access/policy';
import { createLogger } from '../../../platform/logger';
import { startFakeForge, type FakeForge, type ForgeCall } from '../../support/fake-forge';

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(
    fs.readFileSync(path.join(__dirname, '../../../forges/github/fixtures', name), 'utf8'),
  ) as Record<string, unknown>;
const PUBLIC = fixture('github-repo-public.json');
const PRIVATE_WRITER = fixture('github-repo-private-as-writer.json');
const INTERNAL_READER = fixture('github-repo-internal-as-reader.json');
const NOT_FOUND = fixture('github-not-found.json');

const log = createLogger('test');
log.level = 'fatal';

let api: FakeForge;
let calls: ForgeCall[];
/** What the stand-in answers per path; `down` makes it answer 503 to everything. */
let down: boolean;
let revokedForAlice: boolean;

beforeAll(async () => {
  api = await startFakeForge((call) => {
    calls.push(call);
    if (down) return { status: 503, body: { message: 'unavailable' } };
    const asAlice = call.auth === 'Bearer alice-token';
    switch (call.path) {
      case '/repos/octocat/hello-world':
        return { status: 200, body: asAlice ? { ...PUBLIC, permissions: { pull: true } } : PUBLIC };
      case '/repos/octo-org/secret-app':
        return asAlice && !revokedForAlice
          ? { status: 200, body: PRIVATE_WRITER }
          : { status: 404, body: NOT_FOUND };
      case '/repos/octo-org/handbook':
        return asAlice ? { status: 200, body: INTERNAL_READER } : { status: 404, body: NOT_FOUND };
      default:
        return { status: 404, body: NOT_FOUND };
    }
  });
});
afterAll(() => api.close());

let now: number;
function permissions(cacheMs = 60_000): ForgeBackedPermissions {
  return new ForgeBackedPermissions({
    sites: [{ forge: 'github', webUrl: 'https://github.com', apiUrl: api.url }],
    userToken: async (forge, login) => (forge === 'github' && login === 'alice' ? 'alice-token' : undefined),
    cacheMs,
    log,
    now: () => now,
  });
}

beforeEach(() => {
  calls = [];
  down = false;
  revokedForAlice = false;
  now = 1_000_000;
});

const repo = (url: string) => ({ url });

test('visibility is asked without credentials; only `public` counts as public', async () => {
  const p = permissions();
  expect(await p.visibility(repo('https://github.com/octocat/hello-world.git'))).toBe('public');
  expect(await p.visibility(repo('git@github.com:octo-org/secret-app.git'))).toBe('private');
  expect(await p.visibility(repo('https://github.com/octo-org/handbook'))).toBe('private');
  expect(calls.map((c) => [c.path, c.auth ?? ''])).toEqual([
    ['/repos/octocat/hello-world', ''],
    ['/repos/octo-org/secret-app', ''],
    ['/repos/octo-org/handbook', ''],
  ]);
});

test("a user's permission comes from the repository's `permissions` as that user sees it", async () => {
  const p = permissions();
  expect(await p.permission('alice', 'github', repo('https://github.com/octo-org/secret-app'))).toBe('write');
  expect(await p.permission('alice', 'github', repo('https://github.com/octo-org/handbook'))).toBe('read');
  expect(await p.permission('alice', 'github', repo('https://github.com/octocat/hello-world'))).toBe('read');
  // No session, no token: nobody to ask as.
  expect(await p.permission('mallory', 'github', repo('https://github.com/octo-org/secret-app'))).toBe(
    'none',
  );
  // A login of another forge has no say here, even when the name matches.
  expect(await p.permission('alice', 'forgejo', repo('https://github.com/octo-org/secret-app'))).toBe('none');
  expect(calls.every((c) => c.auth === 'Bearer alice-token')).toBe(true);
});

test('answers are cached for the configured time: a revoked permission takes effect when it expires', async () => {
  const p = permissions(60_000);
  const secret = repo('https://github.com/octo-org/secret-app');
  expect(await p.permission('alice', 'github', secret)).toBe('write');
  revokedForAlice = true;
  now += 59_000;
  expect(await p.permission('alice', 'github', secret)).toBe('write');
  expect(calls).toHaveLength(1);
  now += 2_000;
  expect(await p.permission('alice', 'github', secret)).toBe('none');
  expect(calls).toHaveLength(2);
});

test('a forge that cannot be asked denies, and the denial is not cached', async () => {
  const p = permissions();
  const secret = repo('https://github.com/octo-org/secret-app');
  down = true;
  expect(await p.visibility(repo('https://github.com/octocat/hello-world'))).toBe('unknown');
  expect(await p.permission('alice', 'github', secret)).toBe('none');
  down = false;
  expect(await p.visibility(repo('https://github.com/octocat/hello-world'))).toBe('public');
  expect(await p.permission('alice', 'github', secret)).toBe('write');
});

test('a repository no configured forge serves is vouched for by nobody', async () => {
  const p = permissions();
  for (const url of [
    '/srv/git/app',
    'file:///srv/git/app',
    'https://elsewhere.example/octocat/hello-world',
  ]) {
    expect(await p.visibility(repo(url))).toBe('unknown');
    expect(await p.permission('alice', 'github', repo(url))).toBe('none');
  }
  expect(calls).toEqual([]);
  // And so the policy shows it to nobody but tokens and operators.
  const sources: AccessSources = { forge: p, anonymousRead: 'public' };
  const local = repo('/srv/git/app');
  expect((await authorize({ kind: 'anonymous' }, 'read', local, sources)).allowed).toBe(false);
  expect(
    (
      await authorize(
        { kind: 'user', sessionId: 's', forge: 'github', login: 'alice' },
        'read',
        local,
        sources,
      )
    ).allowed,
  ).toBe(false);
  expect((await authorize({ kind: 'operator' }, 'read', local, sources)).allowed).toBe(true);
});
