/**
 * Log text as PostgreSQL `text` can hold it. A job may print any bytes: the runner decodes them
 * as UTF-8 (invalid sequences become U+FFFD) and this replaces what is still unstorable, NUL
 * and lone UTF-16 surrogates, with U+FFFD too, so a replaced byte stays visible in the log
 * instead of wedging the batch it is in. The runner applies it to every line, and the log
 * service again at ingest (an old or broken runner must not be able to wedge a job either).
 *
 * A batch the service still refuses for good is answered with INVALID_ARGUMENT and the
 * trailer REFUSED_SEQS_TRAILER naming the refused lines (`<first>-<last>`); the runner then
 * replaces those lines with a notice and goes on, so no batch is retried forever.
 */
export const REPLACEMENT_CHARACTER = '\uFFFD';

export const REFUSED_SEQS_TRAILER = 'solstice-refused-seqs';

const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

export function storableLogText(text: string): string {
  return UNSTORABLE.test(text) ? text.replace(UNSTORABLE_ALL, REPLACEMENT_CHARACTER) : text;
}

export function formatSeqRange(first: number, last: number): string {
  return `${first}-${last}`;
}

export function parseSeqRange(raw: string): { first: number; last: number } | undefined {
  const m = /^(\d+)-(\d+)$/.exec(raw);
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  return first >= 1 && last >= first ? { first, last } : undefined;
}
