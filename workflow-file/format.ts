/** Diagnostics as text: `file:line:col: error: message`, the source line, and a hint. */
import { sourceLines } from './diagnostics';
import type { Diagnostic } from './model';

export interface FormatOptions {
  /** The file's text, to show the line with a caret under the problem. */
  source?: string;
}

export function formatDiagnostic(file: string, d: Diagnostic, options: FormatOptions = {}): string {
  const lines = [`${file}:${d.line}:${d.column}: ${d.severity}: ${d.message}`];
  const text = options.source === undefined ? undefined : sourceLines(options.source)[d.line - 1];
  if (text !== undefined) {
    const gutter = String(d.line).length;
    const width =
      d.endLine === d.line
        ? Math.max(1, Math.min(d.endColumn, text.length + 1) - d.column)
        : Math.max(1, text.length + 1 - d.column);
    lines.push(`${' '.repeat(gutter + 1)}|`);
    lines.push(`${d.line} | ${text.replace(/\t/g, ' ')}`);
    lines.push(`${' '.repeat(gutter + 1)}| ${' '.repeat(Math.max(0, d.column - 1))}${'^'.repeat(width)}`);
  }
  if (d.hint) lines.push(`  hint: ${d.hint}`);
  return lines.join('\n');
}

export function formatDiagnostics(
  file: string,
  diagnostics: readonly Diagnostic[],
  options: FormatOptions = {},
): string {
  return diagnostics.map((d) => `${formatDiagnostic(file, d, options)}\n`).join('');
}

/** `2 errors, 1 warning`. */
export function summarise(diagnostics: readonly Diagnostic[]): string {
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  return `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`;
}
