/**
 * Forgejo / Gitea: the commit status API (`POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`,
 * context from statusContext, states pending → success / failure / error / skipped), with a
 * token. Gitea knows `skipped`; a forge that refuses it (Forgejo) gets `warning` instead.
 */
import { ForgeApiError, forgeCall, jobTargetUrl, parseRepoUrl, statusContext } from '../forge';
import type { Fetch, ForgeStatusConfig, ReportedState, ReportResult, StatusUpdate } from '../forge';

const FORGEJO_STATE: Record<ReportedState, string> = {
  pending: 'pending',
  success: 'success',
  failure: 'failure',
  error: 'error',
  // Commit statuses know no "cancelled": nothing was decided about the commit.
  cancelled: 'error',
  skipped: 'skipped',
};

export async function reportForgejoStatus(
  cfg: ForgeStatusConfig,
  u: StatusUpdate,
  fetchImpl: Fetch,
): Promise<ReportResult> {
  const { origin, owner, repo } = parseRepoUrl(u.repoUrl);
  if (!cfg.forgejoToken) return { skipped: 'no Forgejo/Gitea token configured' };
  const api = (cfg.forgejoApiUrl ?? `${origin}/api/v1`).replace(/\/$/, '');
  const post = (state: string) =>
    forgeCall(
      fetchImpl,
      'POST',
      `${api}/repos/${owner}/${repo}/statuses/${u.commitSha}`,
      `token ${cfg.forgejoToken}`,
      {
        state,
        context: statusContext(u),
        description: u.description.slice(0, 255),
        target_url: jobTargetUrl(cfg, u.jobId),
      },
    );
  try {
    await post(FORGEJO_STATE[u.state]);
  } catch (err) {
    const refusedState = err instanceof ForgeApiError && (err.status === 400 || err.status === 422);
    if (u.state !== 'skipped' || !refusedState) throw err;
    await post('warning');
  }
  return {};
}
