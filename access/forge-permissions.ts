/**
 * ForgePermissions backed by the forges' APIs: a repository belongs to the configured forge
 * whose web address its URL starts with; any other repository (a local path, an unknown host)
 * is vouched for by no forge, so it is not public and no signed-in user has a permission on it.
 *
 * Answers are kept for `cacheMs` (SOLSTICE_PERMISSION_CACHE): a permission revoked on the forge,
 * or a repository made private, takes effect here within that time. A forge that cannot be
 * asked (down, rate-limited) gets no cached answer and counts as "no": access fails closed.
 */
import type { Forge, Fetch } from '../forges/forge';
import { forgejoPermission, forgejoVisibility } from '../forges/forgejo/permissions';
import { githubPermission, githubVisibility } from '../forges/github/permissions';
import { forgeRepoOf } from '../model/repo-url';
import type { Logger } from '../platform/logger';
import type { ForgePermission, ForgePermissions, RepoRef, Visibility } from './policy';

export interface ForgeSite {
  forge: Forge;
  /** What repository URLs of this forge start with: `https://git.example` (or a sub-path install). */
  webUrl: string;
  /** `https://git.example/api/v1`, `https://api.github.com` */
  apiUrl: string;
}

export interface ForgePermissionsOptions {
  sites: ForgeSite[];
  /** The OAuth token of a signed-in user (their newest live session), to ask as them. */
  userToken(forge: Forge, login: string): Promise<string | undefined>;
  cacheMs: number;
  log: Logger;
  fetch?: Fetch;
  /** Entries kept at most; the oldest go first. */
  maxEntries?: number;
  /** The clock (tests move it). */
  now?: () => number;
}

const trimSlash = (s: string) => s.replace(/\/+$/, '').toLowerCase();

export class ForgeBackedPermissions implements ForgePermissions {
  private readonly cache = new Map<string, { value: string; until: number }>();
  private readonly fetchImpl: Fetch;
  private readonly now: () => number;

  constructor(private readonly opts: ForgePermissionsOptions) {
    this.fetchImpl = opts.fetch ?? fetch;
    this.now = opts.now ?? Date.now;
  }

  /** The configured forge that serves this repository, with its owner and name there. */
  siteOf(repo: RepoRef): { site: ForgeSite; owner: string; name: string } | undefined {
    const r = forgeRepoOf(repo.url);
    if (!r) return undefined;
    const origin = trimSlash(r.origin);
    const site = this.opts.sites.find((s) => trimSlash(s.webUrl) === origin);
    return site ? { site, owner: r.owner, name: r.repo } : undefined;
  }

  async visibility(repo: RepoRef): Promise<Visibility> {
    const at = this.siteOf(repo);
    if (!at) return 'unknown';
    const key = `v\0${at.site.apiUrl}\0${at.owner}/${at.name}`.toLowerCase();
    return this.cached(key, 'unknown', () =>
      at.site.forge === 'github'
        ? githubVisibility(at.site.apiUrl, at.owner, at.name, this.fetchImpl)
        : forgejoVisibility(at.site.apiUrl, at.owner, at.name, this.fetchImpl),
    );
  }

  async permission(login: string, forge: string, repo: RepoRef): Promise<ForgePermission> {
    const at = this.siteOf(repo);
    // A user of one forge has no say over another forge's repositories, whatever the login.
    if (!at || at.site.forge !== forge) return 'none';
    const key = `p\0${at.site.apiUrl}\0${login}\0${at.owner}/${at.name}`.toLowerCase();
    return this.cached(key, 'none', async () => {
      const token = await this.opts.userToken(at.site.forge, login);
      if (!token) return 'none';
      return at.site.forge === 'github'
        ? githubPermission(at.site.apiUrl, at.owner, at.name, token, this.fetchImpl)
        : forgejoPermission(at.site.apiUrl, at.owner, at.name, token, this.fetchImpl);
    });
  }

  /** Forgets a user's permissions: signing in again asks the forge afresh. */
  forgetUser(login: string): void {
    for (const key of this.cache.keys()) {
      const [kind, , who] = key.split('\0');
      if (kind === 'p' && who === login.toLowerCase()) this.cache.delete(key);
    }
  }

  private async cached<T extends string>(key: string, failed: T, ask: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(key);
    if (hit && hit.until > this.now()) return hit.value as T;
    let value: T;
    try {
      value = await ask();
    } catch (err) {
      this.opts.log.warn({ err }, 'the forge could not be asked about access; denying');
      return failed;
    }
    this.cache.delete(key);
    this.cache.set(key, { value, until: this.now() + this.opts.cacheMs });
    const max = this.opts.maxEntries ?? 50_000;
    while (this.cache.size > max) this.cache.delete(this.cache.keys().next().value as string);
    return value;
  }
}
