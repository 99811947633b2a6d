/**
 * The forges people sign in through: OAuth2 authorization code with PKCE (S256) and state, by
 * arctic's generic client (its Gitea and GitHub classes fix the endpoints: GitHub Enterprise,
 * a sub-path Gitea and the tests' stand-ins need them configurable). After the code exchange
 * the user's login is asked of the forge's API with the new token.
 */
import { CodeChallengeMethod, OAuth2Client } from 'arctic';
import type { Forge, Fetch } from '../../forges/forge';
import { forgeCall } from '../../forges/forge';
import type { Config } from '../../platform/config';

export interface SignInProvider {
  forge: Forge;
  /** Shown on the sign-in page. */
  title: string;
  /** The forge's web address: where its users sign in and its repositories' URLs start. */
  webUrl: string;
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
}

const trim = (u: string) => u.replace(/\/+$/, '');

/** The providers the settings configure (each needs its URL, client id and secret). */
export function signInProviders(cfg: Config): SignInProvider[] {
  const out: SignInProvider[] = [];
  if (cfg.oauthForgejoUrl && cfg.oauthForgejoClientId && cfg.oauthForgejoClientSecret)
    out.push({
      forge: 'forgejo',
      title: 'Forgejo / Gitea',
      webUrl: trim(cfg.oauthForgejoUrl),
      apiUrl: trim(cfg.forgejoApiUrl ?? `${trim(cfg.oauthForgejoUrl)}/api/v1`),
      clientId: cfg.oauthForgejoClientId,
      clientSecret: cfg.oauthForgejoClientSecret,
      // Who the user is, and which repositories they can see (and with what permission).
      scopes: ['read:user', 'read:repository'],
    });
  if (cfg.oauthGithubClientId && cfg.oauthGithubClientSecret)
    out.push({
      forge: 'github',
      title: 'GitHub',
      webUrl: trim(cfg.oauthGithubUrl),
      apiUrl: trim(cfg.githubApiUrl),
      clientId: cfg.oauthGithubClientId,
      clientSecret: cfg.oauthGithubClientSecret,
      // GitHub has no read-only scope for private repositories: `repo` is the one that shows them.
      scopes: ['read:user', 'repo'],
    });
  return out;
}

const client = (p: SignInProvider, redirectUri: string) =>
  new OAuth2Client(p.clientId, p.clientSecret, redirectUri);

export function authorizationUrl(
  p: SignInProvider,
  redirectUri: string,
  state: string,
  codeVerifier: string,
): URL {
  return client(p, redirectUri).createAuthorizationURLWithPKCE(
    `${p.webUrl}/login/oauth/authorize`,
    state,
    CodeChallengeMethod.S256,
    codeVerifier,
    p.scopes,
  );
}

/** Exchanges the code; returns the user's access token and login on the forge. */
export async function completeSignIn(
  p: SignInProvider,
  redirectUri: string,
  code: string,
  codeVerifier: string,
  fetchImpl: Fetch = fetch,
): Promise<{ accessToken: string; login: string }> {
  const tokens = await client(p, redirectUri).validateAuthorizationCode(
    `${p.webUrl}/login/oauth/access_token`,
    code,
    codeVerifier,
  );
  const accessToken = tokens.accessToken();
  const user = (await forgeCall(fetchImpl, 'GET', `${p.apiUrl}/user`, `Bearer ${accessToken}`)) as {
    login?: unknown;
  };
  if (typeof user.login !== 'string' || !user.login)
    throw new Error(`${p.apiUrl}/user answered without a login`);
  return { accessToken, login: user.login };
}
