/**
 * Who a web request comes from, and the sign-in routes:
 *   GET  /login                    the forges to sign in through
 *   GET  /login/:forge             starts the OAuth2 flow (state and PKCE verifier in a short cookie)
 *   GET  /login/:forge/callback    checks state, exchanges the code, opens a server-side session
 *   POST /logout                   ends the session (CSRF-checked like every form)
 * Cookies are HttpOnly and SameSite=Lax, and Secure when the pages are served over https
 * (SOLSTICE_PUBLIC_URL https, or X-Forwarded-Proto https from a trusted proxy). Every
 * state-changing form carries a CSRF token made from the session's own secret
 * (@fastify/csrf), so a token from one session is worthless in another.
 */
import { timingSafeEqual } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import Tokens from '@fastify/csrf';
import { generateCodeVerifier, generateState } from 'arctic';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../access/principal';
import { ForbiddenError, NotFoundError } from '../../platform/errors';
import type { Logger } from '../../platform/logger';
import type { SessionStore, WebSessionRecord } from '../../storage/session-store';
import { authorizationUrl, completeSignIn, type SignInProvider } from './providers';
import { escapeHtml, pageShell } from '../job-page/render';

export const SESSION_COOKIE = 'solstice_session';
const FLOW_COOKIE = 'solstice_oauth';
const FLOW_MAX_AGE_S = 600;

export interface SignInOptions {
  providers: SignInProvider[];
  sessions: SessionStore;
  /** SOLSTICE_PUBLIC_URL: the callback URL the forge sends users back to is built from it. */
  publicUrl?: string;
  sessionTtlMs: number;
  log: Logger;
  /** Called after a sign-in, e.g. to forget permissions cached for the user's older token. */
  onSignIn?(forge: string, login: string): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    webSession: WebSessionRecord | undefined;
  }
}

const csrfTokens = new Tokens({ userInfo: true });

/** A token for the session's forms; none without a session (anonymous visitors change nothing). */
export function csrfToken(req: FastifyRequest): string | undefined {
  return req.webSession ? csrfTokens.create(req.webSession.csrfSecret, req.webSession.id) : undefined;
}

/** Refuses a state-changing request whose form lacks its session's CSRF token. */
export function checkCsrf(req: FastifyRequest): void {
  const body = req.body as Record<string, unknown> | undefined;
  const token = typeof body?._csrf === 'string' ? body._csrf : undefined;
  if (!req.webSession || !token || !csrfTokens.verify(req.webSession.csrfSecret, token, req.webSession.id))
    throw new ForbiddenError(
      'this form is missing its CSRF token or it belongs to another session',
      'reload the page and submit the form again',
    );
}

/** Only paths on this site: `/x`, never `//host` or `https://host` (no open redirect). */
function localPath(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) && next.length < 2000 ? next : '/';
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Parses cookies and forms, resolves every request's principal (a live session's user, else
 * anonymous), and adds the sign-in routes when `signIn` is given.
 */
export async function installSessions(
  app: FastifyInstance,
  signIn: SignInOptions | undefined,
  /** Who a request without a live session is. */
  nobody: Principal = { kind: 'anonymous' },
): Promise<void> {
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody, { bodyLimit: 64 * 1024 });
  app.decorateRequest('principal', null as never);
  app.decorateRequest('webSession', undefined);

  const secure = (req: FastifyRequest): boolean =>
    Boolean(signIn?.publicUrl?.startsWith('https:')) || req.protocol === 'https';
  const cookieOptions = (req: FastifyRequest, path: string, maxAgeS: number) => ({
    httpOnly: true,
    sameSite: 'lax' as const,
    secure: secure(req),
    path,
    maxAge: maxAgeS,
  });

  app.addHook('onRequest', async (req) => {
    req.principal = nobody;
    const token = req.cookies[SESSION_COOKIE];
    if (!signIn || !token) return;
    const s = await signIn.sessions.byToken(token);
    if (!s) return;
    req.webSession = s;
    req.principal = { kind: 'user', sessionId: s.id, forge: s.forge, login: s.login };
  });

  if (!signIn) return;
  const base = (req: FastifyRequest): string =>
    (signIn.publicUrl ?? `${req.protocol}://${req.host}`).replace(/\/+$/, '');
  const providerOf = (forge: string): SignInProvider => {
    const p = signIn.providers.find((x) => x.forge === forge);
    if (!p) throw new NotFoundError(`no sign-in through "${forge}" is configured`);
    return p;
  };
  const callbackUrl = (req: FastifyRequest, p: SignInProvider) => `${base(req)}/login/${p.forge}/callback`;

  app.get<{ Querystring: { next?: string } }>('/login', async (req, reply) => {
    const next = localPath(req.query.next);
    const links = signIn.providers
      .map(
        (p) =>
          `<li><a href="/login/${p.forge}?next=${encodeURIComponent(next)}">Sign in with ${escapeHtml(p.title)}</a></li>`,
      )
      .join('');
    const body = signIn.providers.length
      ? `<ul class="sign-in">${links}</ul>`
      : '<p>No forge is configured for sign-in (docs/access.md says how).</p>';
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(pageShell('Sign in', `<h1>Sign in</h1>${body}`));
  });

  app.get<{ Params: { forge: string }; Querystring: { next?: string } }>(
    '/login/:forge',
    async (req, reply) => {
      const p = providerOf(req.params.forge);
      const state = generateState();
      const verifier = generateCodeVerifier();
      const flow = JSON.stringify({ state, verifier, forge: p.forge, next: localPath(req.query.next) });
      reply.setCookie(FLOW_COOKIE, flow, cookieOptions(req, '/login', FLOW_MAX_AGE_S));
      return reply
        .header('cache-control', 'no-store')
        .redirect(authorizationUrl(p, callbackUrl(req, p), state, verifier).toString(), 302);
    },
  );

  app.get<{ Params: { forge: string }; Querystring: { code?: string; state?: string; error?: string } }>(
    '/login/:forge/callback',
    async (req, reply) => {
      const p = providerOf(req.params.forge);
      let flow: { state?: unknown; verifier?: unknown; forge?: unknown; next?: unknown } = {};
      try {
        flow = JSON.parse(req.cookies[FLOW_COOKIE] ?? '{}') as typeof flow;
      } catch {
        // A cookie we did not write: treated as none.
      }
      reply.clearCookie(FLOW_COOKIE, { path: '/login' });
      const { code, state, error } = req.query;
      if (error) throw new ForbiddenError(`the forge refused the sign-in: ${error}`, 'try again from /login');
      if (
        typeof code !== 'string' ||
        typeof state !== 'string' ||
        typeof flow.state !== 'string' ||
        typeof flow.verifier !== 'string' ||
        flow.forge !== p.forge ||
        !sameText(state, flow.state)
      )
        throw new ForbiddenError(
          'this sign-in did not start here or took longer than 10 minutes',
          'start again from /login',
        );
      let user: { accessToken: string; login: string };
      try {
        user = await completeSignIn(p, callbackUrl(req, p), code, flow.verifier);
      } catch (err) {
        // The forge refused the code (reused, expired, wrong verifier) or could not be reached.
        signIn.log.warn({ err, forge: p.forge }, 'sign-in failed at the forge');
        throw new ForbiddenError(
          `${p.title} did not complete the sign-in: ${(err as Error).message}`,
          'start again from /login',
        );
      }
      const { token, session } = await signIn.sessions.create({
        forge: p.forge,
        forgeUrl: p.webUrl,
        login: user.login,
        accessToken: user.accessToken,
        csrfSecret: csrfTokens.secretSync(),
        ttlMs: signIn.sessionTtlMs,
      });
      signIn.onSignIn?.(p.forge, user.login);
      signIn.log.info({ forge: p.forge, login: user.login, session: session.id.slice(0, 12) }, 'signed in');
      reply.setCookie(SESSION_COOKIE, token, cookieOptions(req, '/', Math.floor(signIn.sessionTtlMs / 1000)));
      return reply.header('cache-control', 'no-store').redirect(localPath(flow.next), 303);
    },
  );

  app.post('/logout', async (req, reply: FastifyReply) => {
    checkCsrf(req);
    if (req.webSession) await signIn.sessions.revoke(req.webSession.id);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/', 303);
  });
}
