/**
 * Web sign-in sessions, kept server-side (table web_sessions). The browser's cookie holds a
 * random token; the table holds its SHA-256, so reading the table signs nobody in. A session
 * ends when it expires or is revoked (logout, or `revokeUser`), and then names nobody at once;
 * a revoked session's OAuth token is wiped with it, and the retention sweep removes ended rows.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './db';

export interface WebSessionRecord {
  /** SHA-256 (hex) of the cookie's token: how logs and principals name the session. */
  id: string;
  forge: string;
  forgeUrl: string;
  login: string;
  accessToken: string;
  csrfSecret: string;
  expiresAt: Date;
}

export const sessionIdOf = (token: string): string => createHash('sha256').update(token).digest('hex');

export class SessionStore {
  constructor(private readonly db: Db) {}

  /** A new session; returns the token for the cookie (shown nowhere else). */
  async create(s: {
    forge: string;
    forgeUrl: string;
    login: string;
    accessToken: string;
    csrfSecret: string;
    ttlMs: number;
  }): Promise<{ token: string; session: WebSessionRecord }> {
    const token = randomBytes(32).toString('base64url');
    const row = await this.db.webSession.create({
      data: {
        id: sessionIdOf(token),
        forge: s.forge,
        forgeUrl: s.forgeUrl,
        login: s.login,
        accessToken: s.accessToken,
        csrfSecret: s.csrfSecret,
        expiresAt: new Date(Date.now() + s.ttlMs),
      },
    });
    return { token, session: row };
  }

  /** The live session a cookie's token names; undefined when unknown, expired or revoked. */
  async byToken(token: string): Promise<WebSessionRecord | undefined> {
    if (!token || token.length > 200) return undefined;
    const row = await this.db.webSession.findFirst({
      where: { id: sessionIdOf(token), revokedAt: null, expiresAt: { gt: new Date() } },
    });
    return row ?? undefined;
  }

  /** The OAuth token of a user's newest live session, to ask the forge as that user. */
  async userToken(forge: string, login: string): Promise<string | undefined> {
    const row = await this.db.webSession.findFirst({
      where: { forge, login, revokedAt: null, expiresAt: { gt: new Date() } },
      orderBy: { createdAt: 'desc' },
      select: { accessToken: true },
    });
    return row?.accessToken;
  }

  async revoke(id: string): Promise<void> {
    await this.db.webSession.updateMany({
      where: { id, revokedAt: null },
      data: { revokedAt: new Date(), accessToken: '' },
    });
  }

  /** Signs a user out everywhere; returns how many sessions ended. */
  async revokeUser(forge: string, login: string): Promise<number> {
    const r = await this.db.webSession.updateMany({
      where: { forge, login, revokedAt: null },
      data: { revokedAt: new Date(), accessToken: '' },
    });
    return r.count;
  }

  /** Removes sessions that ended more than `olderThanMs` ago. */
  async prune(olderThanMs: number): Promise<number> {
    const before = new Date(Date.now() - olderThanMs);
    const r = await this.db.webSession.deleteMany({
      where: { OR: [{ expiresAt: { lt: before } }, { revokedAt: { lt: before } }] },
    });
    return r.count;
  }
}
