/**
 * Forgejo / Gitea: who may see a repository. Visibility is asked without credentials (what an
 * anonymous visitor of the forge would be shown, so an instance with REQUIRE_SIGNIN_VIEW or an
 * `internal` repository is not public); a user's permission is asked with that user's own OAuth
 * token (`permissions` of GET /repos/{owner}/{repo}), so a private repository the user cannot
 * see answers 404, which is `none`.
 */
import { ForgeApiError, forgeCall, type Fetch } from '../forge';
import type { ForgePermission, Visibility } from '../../access/policy';

interface RepoJson {
  private?: boolean;
  internal?: boolean;
  permissions?: { admin?: boolean; push?: boolean; pull?: boolean };
}

const repoPath = (owner: string, repo: string) =>
  `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`;

export async function forgejoVisibility(
  apiUrl: string,
  owner: string,
  repo: string,
  fetchImpl: Fetch = fetch,
): Promise<Visibility> {
  try {
    const r = (await forgeCall(fetchImpl, 'GET', `${apiUrl}${repoPath(owner, repo)}`, '')) as RepoJson;
    return r.private === false && r.internal !== true ? 'public' : 'private';
  } catch (err) {
    // 404 (and 401/403 on a sign-in-only instance): nothing an anonymous visitor may see.
    if (err instanceof ForgeApiError && err.status !== undefined && err.status < 500) return 'private';
    throw err;
  }
}

export async function forgejoPermission(
  apiUrl: string,
  owner: string,
  repo: string,
  userToken: string,
  fetchImpl: Fetch = fetch,
): Promise<ForgePermission> {
  let r: RepoJson;
  try {
    r = (await forgeCall(
      fetchImpl,
      'GET',
      `${apiUrl}${repoPath(owner, repo)}`,
      `Bearer ${userToken}`,
    )) as RepoJson;
  } catch (err) {
    if (err instanceof ForgeApiError && err.status === 404) return 'none';
    throw err;
  }
  const p = r.permissions ?? {};
  return p.admin ? 'admin' : p.push ? 'write' : p.pull ? 'read' : 'none';
}
