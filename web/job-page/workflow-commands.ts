/**
 * Workflow commands of Actions steps in the log, as the job page shows them: `::group::title` …
 * `::endgroup::` folds the lines between (an HTML <details>, closed), and `::error`/`::warning`
 * (with `file=`, `line=`) become annotations listed above the log, each linked to its line.
 * The lines themselves stay in the log as the step printed them.
 */
import type { LogLineRecord } from '../../storage/job-store';

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  message: string;
  file?: string;
  line?: number;
  seq: number;
}

const COMMAND = /^::(error|warning|notice)(?:\s+([^:]*))?::(.*)$/;

/** `file=a.c,line=3` → { file: 'a.c', line: '3' }, with GitHub's %2C / %3A / %25 escapes undone. */
function properties(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (raw ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const unescape = (s: string) => s.replace(/%2C/gi, ',').replace(/%3A/gi, ':').replace(/%25/g, '%');
    Object.defineProperty(out, part.slice(0, eq).trim(), {
      value: unescape(part.slice(eq + 1)),
      enumerable: true,
    });
  }
  return out;
}

export function annotationOf(l: LogLineRecord): Annotation | undefined {
  if (l.stream === 'system') return undefined;
  const m = COMMAND.exec(l.text);
  if (!m) return undefined;
  const p = properties(m[2]);
  const line = Number(p.line);
  return {
    level: m[1] as Annotation['level'],
    message: m[3].replace(/%0A/gi, '\n').replace(/%0D/gi, '\r').replace(/%25/g, '%'),
    ...(p.file ? { file: p.file } : {}),
    ...(Number.isInteger(line) && line > 0 ? { line } : {}),
    seq: l.seq,
  };
}

/** `::group::title` → the title; `::endgroup::` → null; other lines → undefined. */
export function groupMarker(l: LogLineRecord): string | null | undefined {
  if (l.stream === 'system') return undefined;
  if (l.text === '::endgroup::') return null;
  const m = /^::group::(.*)$/.exec(l.text);
  return m ? m[1] : undefined;
}
