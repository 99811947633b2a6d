/**
 * The one place that decides who may do what to which repository's pipelines, jobs, logs and
 * artifacts. Entry points resolve a Principal, name the repository the thing belongs to, and
 * ask `authorize`; none of them decides on its own.
 *
 * Denied reads answer 404 like a missing id, so that probing ids tells nothing about what
 * exists; a principal that may read but not change gets 403; no credentials where some are
 * needed get 401.
 */
import { forgeRepoOf, normalizeRepoUrl, repoDisplayName } from '../model/repo-url';
import type { Principal, Scope } from './principal';

export type Action = Scope;

/** A repository as runs record it: the URL (or local path) of their `repoUrl`. */
export interface RepoRef {
  url: string;
}

export type Visibility = 'public' | 'private' | 'unknown';
export type ForgePermission = 'none' | 'read' | 'write' | 'admin';

/** What a forge says about a repository; the forge-backed implementation caches its answers. */
export interface ForgePermissions {
  visibility(repo: RepoRef): Promise<Visibility>;
  permission(login: string, forge: string, repo: RepoRef): Promise<ForgePermission>;
}

export interface AccessSources {
  forge: ForgePermissions;
  /** SOLSTICE_ANONYMOUS_READ: `public` lets anonymous visitors read public repositories, `none` nobody. */
  anonymousRead: 'public' | 'none';
}

export type Decision = { allowed: true } | { allowed: false; status: 401 | 403 | 404; reason: string };

/**
 * The default when no forge is configured for a repository: no forge vouches for it, so it is
 * not public, and nobody has a forge permission on it. Only tokens and operators see it.
 */
export const NO_FORGE: ForgePermissions = {
  visibility: () => Promise.resolve('unknown'),
  permission: () => Promise.resolve('none'),
};

const RANK: Record<ForgePermission, number> = { none: 0, read: 1, write: 2, admin: 3 };

/**
 * Whether a token's `owner/name` entry names the repository: the end of its normalized URL
 * (`host/owner/name`), or a local repository's folder path or name.
 */
export function tokenRepoMatches(entry: string, repo: RepoRef): boolean {
  const want = entry
    .trim()
    .toLowerCase()
    .replace(/\.git$/, '')
    .replace(/^\/+|\/+$/g, '');
  if (!want) return false;
  const have = normalizeRepoUrl(repo.url);
  return have === want || have.endsWith(`/${want}`) || have === `/${want}`;
}

/** A repository's `owner/name`, as token entries and the forge name it. */
export function repoName(repo: RepoRef): string {
  const forge = forgeRepoOf(repo.url);
  return forge ? `${forge.owner}/${forge.repo}` : repoDisplayName(repo.url);
}

const deny = (status: 401 | 403 | 404, reason: string): Decision => ({ allowed: false, status, reason });
const ALLOW: Decision = { allowed: true };

export async function authorize(
  principal: Principal,
  action: Action,
  repo: RepoRef,
  sources: AccessSources,
): Promise<Decision> {
  switch (principal.kind) {
    case 'operator':
      return ALLOW;
    case 'token': {
      const inRepos = principal.repos === null || principal.repos.some((r) => tokenRepoMatches(r, repo));
      if (!inRepos) return deny(404, 'the token is not for this repository');
      if (RANK[principal.scope] >= RANK[action]) return ALLOW;
      return deny(
        403,
        `this needs a token with scope ${action}; token "${principal.name}" has ${principal.scope}`,
      );
    }
    case 'user': {
      const permission = await sources.forge.permission(principal.login, principal.forge, repo);
      if (RANK[permission] >= RANK[action]) return ALLOW;
      const readable = RANK[permission] >= RANK.read || (await sources.forge.visibility(repo)) === 'public';
      if (!readable) return deny(404, 'no access to this repository');
      if (action === 'read') return ALLOW;
      return deny(403, `this needs ${action} access to ${repoName(repo)} on the forge`);
    }
    case 'anonymous': {
      const publicRepo =
        sources.anonymousRead !== 'none' && (await sources.forge.visibility(repo)) === 'public';
      if (!publicRepo) return deny(404, 'no access to this repository');
      if (action === 'read') return ALLOW;
      return deny(401, 'sign in or give a token to change anything');
    }
  }
}
