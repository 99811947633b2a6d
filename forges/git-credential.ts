/**
 * The credential git fetches a forge repository with, so private repositories can be built:
 * the Forgejo/Gitea token (the one that writes commit statuses) as an `Authorization` header.
 * Planning passes it to its git through the environment; the runner gets it in StartJob's
 * answer (runner-api/server.ts) and does the same. It is never part of a URL, a command line,
 * an activity's input or result, the job file or the script's environment, so it stays out of
 * logs, spans and the Temporal history.
 *
 * A repository gets the token only when it is on the forge the token belongs to: the job came
 * from a Forgejo/Gitea webhook (whose host the ingress checked), or the repository's origin is
 * that of SOLSTICE_FORGEJO_API_URL. GitHub repositories get none (a GitHub App's installation
 * token is not wired here): they must be public, or reachable some other way.
 */
import type { JobSource } from '../model/domain';

export interface GitCredentialConfig {
  forgejoToken?: string;
  forgejoApiUrl?: string;
}

function httpOrigin(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

/** `Authorization: token …` for fetching `repoUrl`, or undefined when it gets no credential. */
export function gitAuthHeader(
  cfg: GitCredentialConfig,
  job: { source: JobSource | string; repoUrl: string },
): string | undefined {
  if (!cfg.forgejoToken) return undefined;
  const origin = httpOrigin(job.repoUrl);
  if (!origin) return undefined;
  const forgeOrigin = cfg.forgejoApiUrl ? httpOrigin(cfg.forgejoApiUrl) : undefined;
  if (job.source !== 'forgejo' && origin !== forgeOrigin) return undefined;
  return `Authorization: token ${cfg.forgejoToken}`;
}
