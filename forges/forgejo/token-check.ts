/**
 * What a Forgejo/Gitea token may do, asked of the forge itself (for `solstice doctor`). The
 * forges do not list a token's scopes, but they check them before anything else: a write
 * request under /repos with a token lacking `write:repository` is refused with 403 before the
 * repository is even looked up. So a commit status for a repository that does not exist tells,
 * without writing anything: 403 the token may not write statuses, 401 the token is not
 * accepted, 404 (no such repository) it may.
 */
import { randomBytes } from 'node:crypto';
import { ForgeApiError, forgeCall, type Fetch } from '../forge';

export type TokenVerdict = { ok: true; detail: string } | { ok: false; detail: string; hint: string };

const SCOPE_HINT =
  'make a token with the write:repository scope (Settings → Applications → Generate New Token, ' +
  '"repository: Read and Write"), which commit statuses and private clones need, and set ' +
  'SOLSTICE_FORGEJO_TOKEN to it';

export async function checkForgejoToken(
  apiUrl: string,
  token: string,
  fetchImpl: Fetch = fetch,
): Promise<TokenVerdict> {
  const api = apiUrl.replace(/\/$/, '');
  const probe = `solstice-doctor-${randomBytes(4).toString('hex')}`;
  try {
    await forgeCall(
      fetchImpl,
      'POST',
      `${api}/repos/${probe}/${probe}/statuses/${'0'.repeat(40)}`,
      `token ${token}`,
      {
        state: 'pending',
        context: 'solstice/doctor',
      },
    );
    // Nothing should exist under a random name; a forge that says yes is not one we know.
    return { ok: true, detail: `${api} accepted a commit status with the token` };
  } catch (err) {
    if (!(err instanceof ForgeApiError)) throw err;
    if (err.status === 404 || err.status === 422 || err.status === 400)
      return { ok: true, detail: `${api}: the token may write commit statuses (write:repository)` };
    if (err.status === 403)
      return {
        ok: false,
        detail: `${api}: the token may not write commit statuses (${err.message}); every status would be refused with 403`,
        hint: SCOPE_HINT,
      };
    if (err.status === 401)
      return {
        ok: false,
        detail: `${api} does not accept the token (unknown, expired or revoked)`,
        hint: SCOPE_HINT,
      };
    return {
      ok: false,
      detail: `cannot ask ${api} about the token: ${err.message}`,
      hint: "check that SOLSTICE_FORGEJO_API_URL is the forge's API base (https://<forge>/api/v1) and that the forge is up",
    };
  }
}
