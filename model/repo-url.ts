/**
 * Repository URLs, in every spelling a clone accepts: `https://host/owner/repo.git`,
 * `ssh://git@host:2222/owner/repo`, scp-like `git@host:owner/repo`, `file:///srv/git/repo`
 * and plain local paths. One parser, so the CLI, the bridge, the Web UI texts, span
 * attributes and the forge reporters agree on what a URL names.
 *
 * Pure string work (the global `URL` is the only helper; Temporal's workflow sandbox provides
 * it), because workflows/web-ui.ts runs inside workflows and the runner bundle imports it too.
 */
import { withoutUrlCredentials } from './redact-url';

export type RepoLocation =
  /** A folder on this machine (`/tmp/repo`, `../app`): the CLI resolves it with git. */
  | { form: 'path'; path: string }
  /** `scheme://…`; `file:` URLs are local repositories too, but cloned by URL. */
  | { form: 'url'; url: URL; scheme: string; host: string; hostname: string; path: string }
  /** git's scp-like syntax `[user@]host:path`: SSH without a scheme. */
  | { form: 'scp'; host: string; hostname: string; path: string };

// A user part may hold `user:token`; the host has no `@`, and a `/` before the first `:` makes a
// path (git's own rule, so `./dir:x` stays local).
const SCP = /^(?:[^@/]+@)?([^@/:]+):(?!\/)(.+)$/;

export function parseRepoLocation(raw: string): RepoLocation {
  const s = raw.trim();
  const scp = SCP.exec(s);
  if (scp) return { form: 'scp', host: scp[1], hostname: scp[1], path: scp[2] };
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return { form: 'path', path: s };
  }
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  return { form: 'url', url, scheme, host: url.host, hostname: url.hostname, path: url.pathname };
}

/** A local path the CLI can open with git (not a URL, not scp-like SSH). */
export function isLocalRepo(raw: string): boolean {
  return parseRepoLocation(raw).form === 'path';
}

/**
 * The transport git would fetch `raw` with, as GIT_ALLOW_PROTOCOL names it: `<helper>::<address>`
 * is that helper's (git's rule comes before any other spelling), a URL its scheme, scp-like
 * `host:path` ssh, a path `file`.
 */
export function gitTransportOf(raw: string): string {
  const helper = /^([A-Za-z][A-Za-z0-9+.-]*)::/.exec(raw.trim());
  if (helper) return helper[1].toLowerCase();
  const loc = parseRepoLocation(raw);
  if (loc.form === 'scp') return 'ssh';
  return loc.form === 'path' ? 'file' : loc.scheme;
}

/**
 * The folder of a repository on this host (`/srv/git/app`, `file:///srv/git/app`), which a
 * machine cannot fetch by itself; undefined for URLs a machine can fetch, and relative paths.
 */
export function localRepoPath(raw: string): string | undefined {
  const loc = parseRepoLocation(raw);
  if (loc.form === 'url') return loc.scheme === 'file' ? loc.path : undefined;
  return loc.form === 'path' && loc.path.startsWith('/') ? loc.path : undefined;
}

function isLocal(loc: RepoLocation): boolean {
  return loc.form === 'path' || (loc.form === 'url' && loc.scheme === 'file');
}

/** The repository's path with its trailing slashes and `.git` gone. */
function repoPath(loc: RepoLocation): string {
  return loc.path.replace(/\/+$/, '').replace(/\.git$/, '');
}

/** repoPath as segments. */
function segments(loc: RepoLocation): string[] {
  return repoPath(loc).split('/').filter(Boolean);
}

function hostOf(loc: RepoLocation): string {
  return loc.form === 'path' || isLocal(loc) ? '' : loc.host;
}

/**
 * `https://forge.example/Owner/App.git` → `forge.example/owner/app`: the same repository however
 * it is spelled. Part of the event key behind workflow ids, so its output must stay stable.
 */
export function normalizeRepoUrl(raw: string): string {
  const loc = parseRepoLocation(raw);
  const host = hostOf(loc);
  const p = repoPath(loc).replace(/^\/+/, '');
  return (host ? `${host}/${p}` : `/${p}`).toLowerCase();
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * How a repository reads in the UI and in `SolsticeRepo` filters: `owner/name` for a forge URL
 * (`https://host/owner/name.git`, `git@host:owner/name`), the folder name for a local path.
 */
export function repoDisplayName(raw: string): string {
  const loc = parseRepoLocation(raw);
  const parts = segments(loc).map((p) => (loc.form === 'url' ? decoded(p) : p));
  return parts.slice(isLocal(loc) ? -1 : -2).join('/') || 'repo';
}

/** `owner/name@<sha12>`: a commit as lists and summaries show it. */
export function repoAtCommit(raw: string, commitSha: string): string {
  return `${repoDisplayName(raw)}@${commitSha.slice(0, 12)}`;
}

/** The `<repo>` of a workflow id (`pipeline/<repo>/<sha12>/…`): lower case, safe characters only. */
export function repoIdSegment(raw: string): string {
  const name = normalizeRepoUrl(raw).split('/').filter(Boolean).pop() ?? 'repo';
  return name.replace(/[^a-z0-9._-]/g, '-').slice(0, 64) || 'repo';
}

/** The commit's web page, when the repository URL is a web URL (credentials and query left out). */
export function commitUrl(raw: string, commitSha: string): string | undefined {
  const loc = parseRepoLocation(raw);
  if (loc.form !== 'url' || (loc.scheme !== 'http' && loc.scheme !== 'https')) return undefined;
  return `${loc.scheme}://${loc.host}${repoPath(loc)}/commit/${commitSha}`;
}

/**
 * The URL without user name, password (a clone URL may carry a token), query or fragment,
 * for span attributes and messages. Local paths pass unchanged.
 */
export function repoUrlWithoutCredentials(raw: string): string {
  const loc = parseRepoLocation(raw);
  if (loc.form === 'url') return withoutUrlCredentials(loc.url);
  if (loc.form === 'scp') return `${loc.host}:${loc.path}`;
  return raw;
}

export interface ForgeRepo {
  /** Where the forge's web and API live: `https://host`, plus a sub-path install's prefix. */
  origin: string;
  owner: string;
  repo: string;
}

/**
 * Origin, owner and repository of a forge URL; undefined for local repositories and URLs
 * with fewer than two path segments. SSH spellings map to the forge's https origin.
 */
export function forgeRepoOf(raw: string): ForgeRepo | undefined {
  const loc = parseRepoLocation(raw);
  if (loc.form === 'path' || isLocal(loc)) return undefined;
  const parts = segments(loc);
  if (parts.length < 2) return undefined;
  const web = loc.form === 'url' && (loc.scheme === 'http' || loc.scheme === 'https');
  const origin = web ? `${loc.scheme}://${loc.host}` : `https://${loc.hostname}`;
  // Sub-path installs (https://host/forgejo/owner/repo): owner and repo are the last two parts.
  const prefix = parts.length > 2 ? `/${parts.slice(0, -2).join('/')}` : '';
  return { origin: `${origin}${prefix}`, owner: parts[parts.length - 2], repo: parts[parts.length - 1] };
}
