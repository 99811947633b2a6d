/**
 * Who is asking. Every entry point (the API, the pages, the CLI in direct mode) turns its
 * credentials into one of these and hands it to access/policy.ts, the one place that decides.
 */
export type Scope = 'read' | 'write' | 'admin';

export const SCOPES: readonly Scope[] = ['read', 'write', 'admin'];

export type Principal =
  | { kind: 'anonymous' }
  /** Someone on the host with the database and Temporal credentials: the CLI's direct mode. */
  | { kind: 'operator' }
  /** An API token; `repos` null: every repository, else the `owner/name` entries it is limited to. */
  | { kind: 'token'; tokenId: string; name: string; scope: Scope; repos: string[] | null }
  /** A person signed in through a forge (server-side session). */
  | { kind: 'user'; sessionId: string; forge: string; login: string };

/** How a principal reads in logs and messages, without any secret. */
export function describePrincipal(p: Principal): string {
  switch (p.kind) {
    case 'anonymous':
      return 'an anonymous visitor';
    case 'operator':
      return 'the operator';
    case 'token':
      return `token "${p.name}" (${p.scope})`;
    case 'user':
      return `${p.login} on ${p.forge}`;
  }
}
