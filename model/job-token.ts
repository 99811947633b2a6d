/** Per-job runner tokens: random, shown once (in the machine's seed), stored only as a hash. */
import { createHash, randomBytes } from 'node:crypto';

export function newJobToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashJobToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
