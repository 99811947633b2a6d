/**
 * KDL text → KDL document, via @bgotink/kdl. KDL v2 is the language of the docs; a file that
 * is not v2 but is valid KDL v1 is accepted too (with a warning). Syntax errors become
 * diagnostics with the parser's line and column.
 */
import { InvalidKdlError, parse, type Document } from '@bgotink/kdl';
import { parse as parseV1 } from '@bgotink/kdl/v1-compat';
import { Diagnostics, FILE_START, type Span } from './diagnostics';

export function parseKdl(text: string, out: Diagnostics): Document | undefined {
  let v2Error: unknown;
  try {
    return parse(text, { storeLocations: true });
  } catch (err) {
    v2Error = err;
  }
  try {
    const doc = parseV1(text, { storeLocations: true });
    out.warning('kdl-v1', 'this file is written in KDL v1', FILE_START, {
      hint: 'KDL v2 is preferred: keywords take a "#" (#true, #false, #null); see docs/workflow-file.md',
    });
    return doc;
  } catch {
    // Report the v2 errors: v2 is the language we document.
  }
  reportSyntaxErrors(v2Error, text, out);
  return undefined;
}

function reportSyntaxErrors(err: unknown, text: string, out: Diagnostics): void {
  const details = err instanceof InvalidKdlError ? [...err.flat()] : [];
  if (details.length === 0) {
    out.error('syntax', `not valid KDL: ${err instanceof Error ? err.message : String(err)}`, FILE_START);
    return;
  }
  const seen = new Set<string>();
  for (const d of details) {
    const start = d.start ?? d.token?.start ?? endOfText(text);
    const end = d.end ?? d.token?.end ?? start;
    const at: Span = { start, end };
    const message = cleanMessage(d.message);
    const key = `${start.line}:${start.column}:${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.error('syntax', message, at, { hint: hintFor(message) });
  }
}

function cleanMessage(message: string): string {
  const m = message.replace(/ at \d+:\d+$/, '');
  return m.charAt(0).toLowerCase() + m.slice(1);
}

function hintFor(message: string): string | undefined {
  if (/end of input/.test(message)) return 'a "{" is not closed: add the missing "}"';
  if (/EOF inside string|EOF while parsing raw string/.test(message))
    return 'close the string with its quote';
  if (/multiline comment/.test(message)) return 'close the comment with "*/"';
  if (/Unexpected token "}"/i.test(message)) return 'there is a "}" without a matching "{"';
  return undefined;
}

function endOfText(text: string): { line: number; column: number } {
  const lines = text.split('\n');
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}
