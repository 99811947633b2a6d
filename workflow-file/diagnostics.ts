/** Collecting diagnostics with the location of the KDL element they are about. */
import {
  getLocation,
  type Document,
  type Entry,
  type Identifier,
  type Node,
  type Tag,
  type Value,
} from '@bgotink/kdl';
import type { Diagnostic, Severity } from './model';

export interface Position {
  line: number;
  column: number;
}

export interface Span {
  start: Position;
  end: Position;
}

export const FILE_START: Span = { start: { line: 1, column: 1 }, end: { line: 1, column: 1 } };

export function spanOf(element: Value | Identifier | Tag | Entry | Node | Document | null | undefined): Span {
  const loc = element ? getLocation(element) : undefined;
  return loc ? { start: loc.start, end: loc.end } : FILE_START;
}

/** Where a node is named: its name (the most useful place to point at). */
export const nodeSpan = (node: Node): Span => spanOf(node.name);

/** An argument's value, or a property's name. */
export const entrySpan = (entry: Entry): Span => spanOf(entry.name ?? entry.value);

/** Lines as KDL counts them: its newlines are CRLF, LF, CR, NEL, VT, FF, LS and PS. */
export function sourceLines(text: string): string[] {
  return text.split(/\r\n|[\n\r\u0085\v\f\u2028\u2029]/);
}

export class Diagnostics {
  readonly list: Diagnostic[] = [];
  private readonly lines: string[];

  /**
   * `text` keeps every reported place inside the file, whatever the parser reports; `keep`
   * bounds how many are listed.
   */
  constructor(
    text: string,
    private readonly keep = Infinity,
  ) {
    this.lines = sourceLines(text);
  }

  error(code: string, message: string, at: Span, extra: { hint?: string; suggestion?: string } = {}): void {
    this.add('error', code, message, at, extra);
  }

  warning(code: string, message: string, at: Span, extra: { hint?: string; suggestion?: string } = {}): void {
    this.add('warning', code, message, at, extra);
  }

  private errors = 0;

  /** Enough is listed: walking on would only count more. */
  get full(): boolean {
    return this.list.length >= this.keep;
  }

  get hasErrors(): boolean {
    return this.errors > 0;
  }

  /** In file order; for one place, in the order found. */
  sorted(): Diagnostic[] {
    const list = this.list
      .map((d, i) => ({ d, i }))
      .sort((a, b) => a.d.line - b.d.line || a.d.column - b.d.column || a.i - b.i)
      .map(({ d }) => d);
    if (this.full) {
      const last = list[list.length - 1];
      list.push({
        severity: 'error',
        code: 'too-many-problems',
        message: `the file has more than ${list.length} problems; only the first ${list.length} are listed`,
        line: last.line,
        column: last.column,
        endLine: last.line,
        endColumn: last.column,
        hint: 'fix the ones listed first',
      });
    }
    return list;
  }

  private add(
    severity: Severity,
    code: string,
    message: string,
    at: Span,
    extra: { hint?: string; suggestion?: string },
  ): void {
    const start = this.clamp(at.start);
    let end = this.clamp(at.end);
    if (end.line < start.line || (end.line === start.line && end.column < start.column)) end = start;
    const d: Diagnostic = {
      severity,
      code,
      message: extra.suggestion ? `${message}; did you mean "${extra.suggestion}"?` : message,
      line: start.line,
      column: start.column,
      endLine: end.line,
      endColumn: end.column,
    };
    if (extra.hint) d.hint = extra.hint;
    if (extra.suggestion) d.suggestion = extra.suggestion;
    if (severity === 'error') this.errors++;
    // Past the limit problems are not kept, so a file of mistakes stays cheap to report.
    if (this.list.length < this.keep) this.list.push(d);
  }

  private clamp(p: Position): Position {
    const line = Math.min(Math.max(1, Math.floor(p.line) || 1), this.lines.length);
    const column = Math.min(Math.max(1, Math.floor(p.column) || 1), this.lines[line - 1].length + 1);
    return { line, column };
  }
}
