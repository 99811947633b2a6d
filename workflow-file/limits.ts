/**
 * How much a workflow file may ask for. A repository author controls the file, so every
 * bound here is checked before the work it protects: size, lines and words before the KDL
 * parser runs (its cost grows with the number of tokens), nodes, jobs, steps and depth
 * before the file is walked, diagnostics while it is. The table in docs/limits.md lists them.
 */
import type { Document, Node } from '@bgotink/kdl';
import { nodeSpan, type Diagnostics, type Position } from './diagnostics';

export const WORKFLOW_FILE_LIMITS = {
  /** Bytes of UTF-8, as GitHub allows for a workflow file. */
  bytes: 500 * 1024,
  lines: 2_500,
  /** Runs of non-space characters: a cheap upper bound of the parser's tokens. */
  words: 10_000,
  /** KDL nodes in the whole file. */
  nodes: 20_000,
  jobs: 256,
  stepsPerFile: 2_000,
  /** Children blocks inside children blocks. */
  depth: 8,
  /** Problems reported per file; the rest are counted, not listed. */
  diagnostics: 100,
} as const;

function positionOfOffset(text: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/** Before parsing: true when the text is small enough to hand to the parser. */
export function checkTextLimits(text: string, out: Diagnostics): boolean {
  const L = WORKFLOW_FILE_LIMITS;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > L.bytes) {
    // Where the limit is crossed, roughly (characters, not bytes): the author can see how much to cut.
    const at = positionOfOffset(text, Math.min(text.length, L.bytes));
    out.error(
      'too-large',
      `the file is ${bytes} bytes, more than the ${L.bytes} allowed`,
      { start: at, end: at },
      {
        hint: 'split long scripts into files in the repository and run them from a step',
      },
    );
    return false;
  }
  let lines = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) {
    if (++lines > L.lines) {
      const at = { line: lines, column: 1 };
      out.error('too-many-lines', `the file has more than ${L.lines} lines`, { start: at, end: at });
      return false;
    }
  }
  const word = /\S+/g;
  let words = 0;
  while (word.exec(text)) {
    if (++words > L.words) {
      const at = positionOfOffset(text, word.lastIndex - 1);
      out.error(
        'too-many-words',
        `the file has more than ${L.words} words`,
        { start: at, end: at },
        {
          hint: 'move long scripts into files in the repository and run them from a step',
        },
      );
      return false;
    }
  }
  return true;
}

/** After parsing, before the walk: the shape's size. Reports the first node over a limit. */
export function checkDocumentLimits(doc: Document, out: Diagnostics): boolean {
  const L = WORKFLOW_FILE_LIMITS;
  let nodes = 0;
  let jobs = 0;
  let steps = 0;
  const over = (n: Node, code: string, message: string): false => {
    out.error(code, message, nodeSpan(n));
    return false;
  };
  const visit = (list: readonly Node[], depth: number): boolean => {
    for (const n of list) {
      if (++nodes > L.nodes) return over(n, 'too-many-nodes', `the file has more than ${L.nodes} nodes`);
      const name = n.getName();
      if (depth === 0 && name === 'job' && ++jobs > L.jobs)
        return over(n, 'too-many-jobs', `the file has more than ${L.jobs} jobs`);
      if (depth === 1 && name === 'step' && ++steps > L.stepsPerFile)
        return over(n, 'too-many-steps', `the file has more than ${L.stepsPerFile} steps`);
      const children = n.children?.nodes ?? [];
      if (children.length > 0) {
        if (depth + 1 >= L.depth) return over(n, 'too-deep', `blocks are nested more than ${L.depth} deep`);
        if (!visit(children, depth + 1)) return false;
      }
    }
    return true;
  };
  return visit(doc.nodes, 0);
}
