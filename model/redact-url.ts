/**
 * Keeping credentials that ride in URLs (`scheme://user:secret@host/…`) out of logs, messages,
 * spans and job environments. Every process uses these, the runner too, so this module
 * imports nothing.
 */

/** `scheme://` then a user-info part up to its `@`, as it appears inside free text. */
const USERINFO_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi;

/**
 * Replaces the whole user-info part of every URL in `text` with `***`
 * (`https://user:secret@host/…` → `https://***@host/…`). For text that may quote a URL
 * anywhere, such as git's error messages; scp-like `git@host:path` has no secret and is kept.
 */
export function redactUrlsInText(text: string): string {
  return text.replace(USERINFO_IN_TEXT, '$1***@');
}

/**
 * The same for an error about to be passed on (a failure's cause travels into Temporal and the
 * database): its message and its stack, which repeats the message. Returns the error.
 */
export function redactErrorUrls<E extends Error>(err: E): E {
  err.message = redactUrlsInText(err.message);
  if (err.stack) err.stack = redactUrlsInText(err.stack);
  return err;
}

/**
 * One URL with only its password replaced by `***`, so the user name still says which
 * account was used. Undefined when `url` does not parse, so each caller says in its own
 * words which setting is malformed rather than echoing it (it may hold the password).
 */
export function redactUrlPassword(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.password) u.password = '***';
  return u.toString();
}

/** The URL without user name, password, query or fragment: the parts that may carry a token. */
export function withoutUrlCredentials(u: URL): string {
  const clean = new URL(u.href);
  clean.username = '';
  clean.password = '';
  clean.search = '';
  clean.hash = '';
  return clean.toString();
}
