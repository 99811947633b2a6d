/**
 * Forgejo / Gitea: the commit status API (`POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`,
 * context `solstice/<job>`, states pending → success / failure / error), with a token.
 */
import { forgeCall, jobTargetUrl, parseRepoUrl } from '../forge';
import type { Fetch, ForgeStatusConfig, ReportedState, ReportResult, StatusUpdate } from '../forge';

const FORGEJO_STATE: Record<ReportedState, string> = {
  pending: 'pending',
  success: 'success',
  failure: 'failure',
  error: 'error',
  // Commit statuses know no "cancelled": nothing was decided about the commit.
  cancelled: 'error',
};

export async function reportForgejoStatus(
  cfg: ForgeStatusConfig,
  u: StatusUpdate,
  fetchImpl: Fetch,
): Promise<ReportResult> {
  const { origin, owner, repo } = parseRepoUrl(u.repoUrl);
  if (!cfg.forgejoToken) return { skipped: 'no Forgejo/Gitea token configured' };
  const api = (cfg.forgejoApiUrl ?? `${origin}/api/v1`).replace(/\/$/, '');
  await forgeCall(
    fetchImpl,
    'POST',
    `${api}/repos/${owner}/${repo}/statuses/${u.commitSha}`,
    `token ${cfg.forgejoToken}`,
    {
      state: FORGEJO_STATE[u.state],
      context: `solstice/${u.job}`,
      description: u.description.slice(0, 255),
      target_url: jobTargetUrl(cfg, u.jobId),
    },
  );
  return {};
}
