/**
 * API tokens: `sol_` and 43 base64url characters (32 random bytes), shown once when made. The
 * database keeps only the SHA-256 of the whole token, so a copy of it gives no usable token;
 * tokens are looked up by that hash. A token has a scope (read < write < admin), optionally a
 * list of `owner/name` repositories it is limited to, an optional expiry, and can be revoked.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../storage/db';
import { AuthError, InputError, NotFoundError } from '../platform/errors';
import { SCOPES, type Principal, type Scope } from './principal';

export const TOKEN_PREFIX = 'sol_';
const TOKEN_SHAPE = /^sol_[A-Za-z0-9_-]{43}$/;
/** last_used_at is written at most this often per token, so reads stay reads. */
const LAST_USED_RESOLUTION_MS = 60_000;

export interface ApiTokenRecord {
  id: string;
  name: string;
  scope: Scope;
  /** null: every repository. */
  repos: string[] | null;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function readScope(raw: string): Scope {
  if (!(SCOPES as readonly string[]).includes(raw))
    throw new InputError(`--scope must be one of ${SCOPES.join(', ')}, got "${raw}"`);
  return raw as Scope;
}

/** `owner/name`: what `--repo` takes; a URL or path is refused with the form to use. */
export function readTokenRepo(raw: string): string {
  const r = raw.trim().replace(/\.git$/, '');
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(r) || r.split('/').some((p) => p === '.' || p === '..'))
    throw new InputError(
      `--repo must be owner/name, got "${raw}"`,
      'e.g. --repo acme/app; repeat it for more',
    );
  return r.toLowerCase();
}

const FIELDS = {
  id: true,
  name: true,
  scope: true,
  repos: true,
  createdAt: true,
  expiresAt: true,
  revokedAt: true,
  lastUsedAt: true,
} as const;

type Row = Omit<ApiTokenRecord, 'scope' | 'repos'> & { scope: string; repos: string[] };

function toRecord(r: Row): ApiTokenRecord {
  // An empty list in the column means "every repository" (a token for none would be useless).
  return { ...r, scope: r.scope as Scope, repos: r.repos.length > 0 ? r.repos : null };
}

export class TokenStore {
  constructor(private readonly db: Db) {}

  async create(opts: {
    name: string;
    scope: Scope;
    repos?: string[];
    expiresInMs?: number;
    now?: Date;
  }): Promise<{ token: string; record: ApiTokenRecord }> {
    const name = opts.name.trim();
    if (!name || name.length > 100) throw new InputError('--name must be 1 to 100 characters');
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const now = opts.now ?? new Date();
    const row = await this.db.apiToken.create({
      data: {
        id: randomUUID(),
        name,
        tokenHash: hashToken(token),
        scope: opts.scope,
        repos: [...new Set(opts.repos ?? [])],
        createdAt: now,
        expiresAt: opts.expiresInMs === undefined ? null : new Date(now.getTime() + opts.expiresInMs),
      },
      select: FIELDS,
    });
    return { token, record: toRecord(row) };
  }

  async list(): Promise<ApiTokenRecord[]> {
    const rows = await this.db.apiToken.findMany({ orderBy: { createdAt: 'asc' }, select: FIELDS });
    return rows.map(toRecord);
  }

  /** Revokes by id or by name (names need not be unique: a name that fits several is refused). */
  async revoke(idOrName: string, now = new Date()): Promise<ApiTokenRecord> {
    const byId = /^[0-9a-f-]{36}$/i.test(idOrName)
      ? await this.db.apiToken.findMany({ where: { id: idOrName.toLowerCase() }, select: FIELDS })
      : [];
    const found =
      byId.length > 0 ? byId : await this.db.apiToken.findMany({ where: { name: idOrName }, select: FIELDS });
    if (found.length === 0)
      throw new NotFoundError(
        `no token ${idOrName}`,
        '`solstice token list` shows the tokens, with their ids',
      );
    if (found.length > 1)
      throw new InputError(
        `${found.length} tokens are named ${idOrName}`,
        `revoke one by id: ${found.map((t) => t.id).join(', ')}`,
      );
    const row = await this.db.apiToken.update({
      where: { id: found[0].id },
      // Revoking twice keeps the first time.
      data: { revokedAt: found[0].revokedAt ?? now },
      select: FIELDS,
    });
    return toRecord(row);
  }

  /**
   * The principal a presented token stands for. Unknown, malformed, revoked and expired tokens
   * are an AuthError, each saying which, none saying anything about other tokens.
   */
  async authenticate(token: string, now = new Date()): Promise<Principal & { kind: 'token' }> {
    if (!TOKEN_SHAPE.test(token))
      throw new AuthError('the token is malformed', `API tokens look like ${TOKEN_PREFIX}<43 characters>`);
    const row = await this.db.apiToken.findUnique({ where: { tokenHash: hashToken(token) }, select: FIELDS });
    if (!row) throw new AuthError('unknown token', 'an operator makes one with `solstice token create`');
    if (row.revokedAt) throw new AuthError(`token "${row.name}" was revoked`);
    if (row.expiresAt && row.expiresAt.getTime() <= now.getTime())
      throw new AuthError(`token "${row.name}" expired at ${row.expiresAt.toISOString()}`);
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() >= LAST_USED_RESOLUTION_MS)
      await this.db.apiToken.update({ where: { id: row.id }, data: { lastUsedAt: now } });
    const record = toRecord(row);
    return { kind: 'token', tokenId: record.id, name: record.name, scope: record.scope, repos: record.repos };
  }
}
