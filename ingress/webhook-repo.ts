/**
 * The repository a signed delivery names must be one of the forge that signed it. Without
 * this, one repository's webhook secret reaches every repository git can name: another
 * forge, a path on the worker's host, git's `fd::` / `ext::` transports.
 */
import type { Forge } from '../forges/forge';

export interface RepoHosts {
  /** Base URL of each forge's API, when configured; the repository must be on its host. */
  forgejoApiUrl?: string;
  githubApiUrl?: string;
  /** Tests and experiments: a path on this host is accepted too. */
  localRepos?: boolean;
}

/** GitHub serves repositories from github.com, its API from api.github.com. */
function hostOf(apiUrl: string): string {
  const host = new URL(apiUrl).hostname.toLowerCase();
  return host.startsWith('api.') ? host.slice(4) : host;
}

/** Why the repository URL is refused, or undefined when the forge may name it. */
export function webhookRepoProblem(forge: Forge, repoUrl: string, hosts: RepoHosts): string | undefined {
  if (repoUrl.startsWith('/') && !repoUrl.includes('::')) {
    return hosts.localRepos
      ? undefined
      : 'repository.clone_url is a path on this host; only forge repositories are built';
  }
  let url: URL;
  try {
    url = new URL(repoUrl);
  } catch {
    return 'repository.clone_url is not an https or ssh URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'ssh:' && url.protocol !== 'http:')
    return `repository.clone_url uses ${url.protocol.replace(/:$/, '')}, not https or ssh`;
  const base = forge === 'github' ? (hosts.githubApiUrl ?? 'https://api.github.com') : hosts.forgejoApiUrl;
  // Forgejo without a configured API URL trusts the repository's own origin (as statuses do).
  if (base === undefined) return undefined;
  const allowed = hostOf(base);
  return url.hostname.toLowerCase() === allowed
    ? undefined
    : `repository.clone_url is on ${url.hostname}, not on ${allowed}, the ${forge} this endpoint serves`;
}
