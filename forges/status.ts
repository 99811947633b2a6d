/**
 * Reporting a job's state back to the forge, so the commit and the pull request show it.
 * Each forge's API lives in its own folder (forgejo/status.ts, github/status.ts).
 *
 * Credentials come from settings (inline or `file:<path>`) and never reach logs or errors.
 * Errors carry whether retrying can help (5xx, 429, network) or not (other 4xx): the
 * activity wrapper (activities/forge-status.ts) turns them into retryable or non-retryable
 * failures, and the workflow records a failure to report without letting it change the
 * job's result.
 */
import type { Fetch, ForgeStatusConfig, StatusReporter } from './forge';
import { reportForgejoStatus } from './forgejo/status';
import { GithubAppAuth, reportGithubCheck } from './github/status';

export function createStatusReporter(cfg: ForgeStatusConfig, fetchImpl: Fetch = fetch): StatusReporter {
  const github =
    cfg.githubAppId && cfg.githubPrivateKey
      ? new GithubAppAuth(cfg.githubAppId, cfg.githubPrivateKey, cfg.githubApiUrl, fetchImpl)
      : undefined;
  return {
    report: (u) =>
      u.forge === 'forgejo'
        ? reportForgejoStatus(cfg, u, fetchImpl)
        : reportGithubCheck(cfg, github, u, fetchImpl),
  };
}
