/**
 * GitHub: who may see a repository. Visibility is asked without credentials (only `public`
 * counts; `internal` and `private` repositories are not shown to anonymous visitors); a user's
 * permission is asked with that user's OAuth token: GET /repos/{owner}/{repo} lists
 * `permissions` (admin, maintain, push, triage, pull) for the caller, and answers 404 for a
 * private repository the user cannot see.
 */
import { ForgeApiError, forgeCall, type Fetch } from '../forge';
import type { ForgePermission, Visibility } from '../../access/policy';

interface RepoJson {
  private?: boolean;
  visibility?: string;
  permissions?: { admin?: boolean; maintain?: boolean; push?: boolean; triage?: boolean; pull?: boolean };
}

const ACCEPT = 'application/vnd.github+json';
const repoPath = (owner: string, repo: string) =>
  `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`;

export async function githubVisibility(
  apiUrl: string,
  owner: string,
  repo: string,
  fetchImpl: Fetch = fetch,
): Promise<Visibility> {
  try {
    const r = (await forgeCall(
      fetchImpl,
      'GET',
      `${apiUrl}${repoPath(owner, repo)}`,
      '',
      undefined,
      ACCEPT,
    )) as RepoJson;
    return r.private === false && (r.visibility ?? 'public') === 'public' ? 'public' : 'private';
  } catch (err) {
    if (err instanceof ForgeApiError && err.status === 404) return 'private';
    throw err;
  }
}

export async function githubPermission(
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
      undefined,
      ACCEPT,
    )) as RepoJson;
  } catch (err) {
    if (err instanceof ForgeApiError && err.status === 404) return 'none';
    throw err;
  }
  const p = r.permissions ?? {};
  return p.admin ? 'admin' : p.maintain || p.push ? 'write' : p.pull || p.triage ? 'read' : 'none';
}
