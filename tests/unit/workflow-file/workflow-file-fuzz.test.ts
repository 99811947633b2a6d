/**
 * Mutation fuzz: thousands of random edits (deletions, insertions of KDL punctuation,
 * duplications, swaps) of the valid example files. The parser must never throw, and must give
 * either a valid workflow or errors whose every location lies inside the file. Seeded, so a
 * failure reproduces: the message names the case number and the mutated text.
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatDiagnostics, parseWorkflowFile, type ParseResult } from '../../../workflow-file';
import { seededRandom } from '../../support/seeded-random';

const SEED = 0x5015_71ce;
const CASES = 10_000;

const PUNCTUATION = [
  '{',
  '}',
  '"',
  '=',
  ';',
  '/-',
  '/*',
  '*/',
  '//',
  '#',
  '(',
  ')',
  '\\',
  '\n',
  '\r\n',
  ' ',
  '\t',
  'r#"',
  '#"',
  '"#',
  '"""',
  '"""\n',
  '#true',
  '#null',
  '#nan',
  '-',
  '.',
  '$',
  '${matrix.',
  '0x',
  '1e9',
  'job',
  'step',
  'needs',
  '"a"',
  'run=',
  '\u00e9',
  '\u00a0',
  '\ufeff',
  '\u2028',
  '\u0085',
];

function examples(): string[] {
  const dir = path.join(__dirname, '../../fixtures/workflow-file');
  const files = fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
  const doc = fs.readFileSync(path.join(__dirname, '../../../docs/workflow-file.md'), 'utf8');
  const fromDoc = [...doc.matchAll(/^```kdl\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  return [...files, ...fromDoc];
}

function mutate(text: string, random: () => number): string {
  const pick = (n: number) => Math.floor(random() * n);
  const span = () => {
    const start = pick(text.length + 1);
    return [start, Math.min(text.length, start + 1 + pick(random() < 0.7 ? 4 : 40))];
  };
  const edits = 1 + pick(3);
  for (let e = 0; e < edits; e++) {
    const kind = pick(5);
    if (kind === 0) {
      const [a, b] = span();
      text = text.slice(0, a) + text.slice(b);
    } else if (kind === 1) {
      const at = pick(text.length + 1);
      text = text.slice(0, at) + PUNCTUATION[pick(PUNCTUATION.length)] + text.slice(at);
    } else if (kind === 2) {
      const [a, b] = span();
      const at = pick(text.length + 1);
      text = text.slice(0, at) + text.slice(a, b) + text.slice(at);
    } else if (kind === 3) {
      const [a, b] = span();
      const [c, d] = span();
      if (b <= c)
        text = text.slice(0, a) + text.slice(c, d) + text.slice(b, c) + text.slice(a, b) + text.slice(d);
    } else {
      // Swap two whole lines.
      const lines = text.split('\n');
      const i = pick(lines.length);
      const j = pick(lines.length);
      [lines[i], lines[j]] = [lines[j], lines[i]];
      text = lines.join('\n');
    }
  }
  return text;
}

/** Lines as KDL counts them (its newlines include CR, NEL, VT, FF, LS and PS). */
function kdlLines(text: string): string[] {
  return text.split(/\r\n|[\n\r\u0085\v\f\u2028\u2029]/);
}

function problems(text: string, result: ParseResult): string[] {
  const out: string[] = [];
  const lines = kdlLines(text);
  const inside = (line: number, column: number) =>
    Number.isInteger(line) &&
    Number.isInteger(column) &&
    line >= 1 &&
    line <= lines.length &&
    column >= 1 &&
    column <= lines[line - 1].length + 1;
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (result.ok !== (errors.length === 0)) out.push(`ok=${result.ok} with ${errors.length} errors`);
  if (result.ok !== (result.workflow !== undefined)) out.push('ok and workflow disagree');
  for (const d of result.diagnostics) {
    if (!inside(d.line, d.column)) out.push(`start ${d.line}:${d.column} outside the file: ${d.message}`);
    if (!inside(d.endLine, d.endColumn))
      out.push(`end ${d.endLine}:${d.endColumn} outside the file: ${d.message}`);
    if (d.endLine < d.line || (d.endLine === d.line && d.endColumn < d.column))
      out.push(`end before start: ${d.message}`);
    if (!d.message) out.push('empty message');
  }
  if (result.workflow && result.workflow.jobs.length === 0) out.push('valid workflow without jobs');
  return out;
}

test(`${CASES} mutated example files never crash the parser and always locate their errors`, () => {
  const random = seededRandom(SEED);
  const sources = examples();
  expect(sources.length).toBeGreaterThanOrEqual(8);
  let valid = 0;
  for (let i = 0; i < CASES; i++) {
    const text = mutate(sources[i % sources.length], random);
    let result: ParseResult;
    try {
      result = parseWorkflowFile(text);
      formatDiagnostics('workflow.kdl', result.diagnostics, { source: text });
    } catch (err) {
      throw new Error(`case ${i} threw ${(err as Error).stack}\n--- text ---\n${text}`, { cause: err });
    }
    const found = problems(text, result);
    if (found.length > 0) throw new Error(`case ${i}: ${found.join('; ')}\n--- text ---\n${text}`);
    if (result.ok) valid++;
  }
  // Both outcomes are exercised: some edits are harmless (inside a string), most are not.
  expect(valid).toBeGreaterThan(CASES * 0.02);
  expect(valid).toBeLessThan(CASES * 0.8);
});
