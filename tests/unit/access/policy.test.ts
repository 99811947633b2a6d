/** access/policy.ts: who may read and change which repository, and what a denial looks like. */
import {
  authorize,
  NO_FORGE,
  tokenRepoMatches,
  type AccessSources,
  type ForgePermission,
  type ForgePermissions,
} from '../../../access/policy';
import type { Principal } from '../../../access/principal';

const PUBLIC = { url: 'https://forge.example/acme/open.git' };
const PRIVATE = { url: 'https://forge.example/acme/secret.git' };
const LOCAL = { url: '/srv/repos/acme/tool' };

/** A forge that says open is public, and what each login may do on secret. */
function forge(perms: Record<string, ForgePermission>): ForgePermissions {
  return {
    visibility: (repo) => Promise.resolve(repo.url === PUBLIC.url ? 'public' : 'private'),
    permission: (login, _forge, repo) =>
      Promise.resolve(repo.url === PRIVATE.url ? (perms[login] ?? 'none') : 'none'),
  };
}

const sources = (over: Partial<AccessSources> = {}): AccessSources => ({
  forge: forge({ reader: 'read', writer: 'write' }),
  anonymousRead: 'public',
  ...over,
});
const user = (login: string): Principal => ({ kind: 'user', sessionId: 's', forge: 'forge.example', login });
const token = (scope: 'read' | 'write' | 'admin', repos: string[] | null = null): Principal => ({
  kind: 'token',
  tokenId: 't',
  name: 'n',
  scope,
  repos,
});

test.each([
  // who, action, repo, expected status (200 = allowed)
  ['operator', { kind: 'operator' }, 'admin', PRIVATE, 200],
  ['anonymous reads public', { kind: 'anonymous' }, 'read', PUBLIC, 200],
  ['anonymous reads private', { kind: 'anonymous' }, 'read', PRIVATE, 404],
  ['anonymous writes public', { kind: 'anonymous' }, 'write', PUBLIC, 401],
  ['reader reads private', user('reader'), 'read', PRIVATE, 200],
  ['reader cancels private', user('reader'), 'write', PRIVATE, 403],
  ['writer cancels private', user('writer'), 'write', PRIVATE, 200],
  ['stranger reads private', user('stranger'), 'read', PRIVATE, 404],
  ['stranger cancels private', user('stranger'), 'write', PRIVATE, 404],
  ['stranger reads public', user('stranger'), 'read', PUBLIC, 200],
  ['stranger cancels public', user('stranger'), 'write', PUBLIC, 403],
  ['read token reads', token('read'), 'read', PRIVATE, 200],
  ['read token cancels', token('read'), 'write', PRIVATE, 403],
  ['write token cancels', token('write'), 'write', PRIVATE, 200],
  ['write token, admin action', token('write'), 'admin', PRIVATE, 403],
  ['token for another repo', token('admin', ['acme/open']), 'read', PRIVATE, 404],
  ['token for this repo', token('read', ['acme/secret']), 'read', PRIVATE, 200],
  ['token for a local repo', token('read', ['acme/tool']), 'read', LOCAL, 200],
] as const)('%s', async (_what, principal, action, repo, status) => {
  const d = await authorize(principal as Principal, action, repo, sources());
  expect(d.allowed ? 200 : d.status).toBe(status);
});

test('SOLSTICE_ANONYMOUS_READ=none: anonymous visitors read nothing, public repositories included', async () => {
  const d = await authorize({ kind: 'anonymous' }, 'read', PUBLIC, sources({ anonymousRead: 'none' }));
  expect(d).toMatchObject({ allowed: false, status: 404 });
  // Signed-in users still read what the forge says is public.
  expect(
    (await authorize(user('stranger'), 'read', PUBLIC, sources({ anonymousRead: 'none' }))).allowed,
  ).toBe(true);
});

test('without a forge, nothing is public: only tokens and operators see a repository', async () => {
  const none = sources({ forge: NO_FORGE });
  for (const repo of [PUBLIC, LOCAL]) {
    expect(await authorize({ kind: 'anonymous' }, 'read', repo, none)).toMatchObject({ status: 404 });
    expect(await authorize(user('writer'), 'read', repo, none)).toMatchObject({ status: 404 });
    expect((await authorize(token('read'), 'read', repo, none)).allowed).toBe(true);
    expect((await authorize({ kind: 'operator' }, 'write', repo, none)).allowed).toBe(true);
  }
});

test('a token entry names a repository by the end of its URL, never by a part of a name', () => {
  expect(tokenRepoMatches('acme/app', { url: 'https://forge.example/Acme/App.git' })).toBe(true);
  expect(tokenRepoMatches('acme/app', { url: 'git@forge.example:acme/app.git' })).toBe(true);
  expect(tokenRepoMatches('acme/app', { url: 'https://forge.example/acme/app-b' })).toBe(false);
  expect(tokenRepoMatches('acme/app', { url: 'https://forge.example/notacme/app' })).toBe(false);
  expect(tokenRepoMatches('', { url: 'https://forge.example/acme/app' })).toBe(false);
});
