/**
 * Mutation fuzz of the Actions planner: 1,000 random edits (deletions, YAML punctuation,
 * duplicated and swapped lines, broken `${{ }}`) of the real-world fixtures. Parsing and planning
 * must never throw, and every run must end in a valid parse or in errors whose every location lies
 * inside the file. Seeded, so a failure reproduces: the message names the case and the text.
 */
import fs from 'node:fs';
import path from 'node:path';
import { planActions } from '../../../workflow-file/actions';
import { seededRandom } from '../../support/seeded-random';

const SEED = 0xac71_0e5;
const CASES = 1_000;

const PIECES = [
  ':',
  '-',
  ' ',
  '  ',
  '\n',
  '"',
  "'",
  '[',
  ']',
  '{',
  '}',
  '${{',
  '}}',
  '${{ matrix.',
  '&a',
  '*a',
  '!!',
  '|',
  '>',
  '#',
  '\t',
  'needs: x',
  'uses: a/b@v1',
  'if: failure()',
  'runs-on: [',
  'strategy:\n  matrix: 7',
];

const ROOT = path.join(__dirname, '../../fixtures/actions');
const FIXTURES = [
  'rustnzb/.forgejo/workflows/ci.yml',
  'dashcap/.forgejo/workflows/ci.yml',
  'just/.github/workflows/ci.yaml',
  'flask/.github/workflows/tests.yaml',
].map((f) => fs.readFileSync(path.join(ROOT, f), 'utf8'));

function mutate(text: string, r: () => number): string {
  const edits = 1 + Math.floor(r() * 4);
  let out = text;
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(r() * (out.length + 1));
    const kind = Math.floor(r() * 5);
    if (kind === 0) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(r() * 20));
    else if (kind === 1) out = out.slice(0, at) + PIECES[Math.floor(r() * PIECES.length)] + out.slice(at);
    else {
      const lines = out.split('\n');
      const i = Math.floor(r() * lines.length);
      const j = Math.floor(r() * lines.length);
      if (kind === 2) lines.splice(i, 0, lines[j]);
      else if (kind === 3) [lines[i], lines[j]] = [lines[j], lines[i]];
      else lines.splice(i, 1);
      out = lines.join('\n');
    }
  }
  return out;
}

test(`${CASES} mutations of the fixtures each end in a located error or a valid parse`, async () => {
  const r = seededRandom(SEED);
  let valid = 0;
  for (let n = 0; n < CASES; n++) {
    const text = mutate(FIXTURES[n % FIXTURES.length], r);
    const lines = text.split('\n').length;
    const where = `case ${n}:\n${text}`;
    let plan;
    try {
      // Planning parses too, then expands what parsed: both must hold up.
      plan = await planActions(
        [{ path: '.forgejo/workflows/ci.yml', text }],
        { event: 'push', ref: 'refs/heads/main', sha: 'abc' },
        { runsOn: { local: ['ubuntu-latest', 'docker'] }, evenWithErrors: true, anyEvent: true },
      );
    } catch (err) {
      throw new Error(`${where}\nthrew: ${(err as Error).stack}`, { cause: err });
    }
    const errors = plan.errors.flatMap((e) => e.diagnostics);
    if (errors.length === 0) {
      if (plan.workflows.length !== 1) throw new Error(`${where}\nno errors and no workflow`);
      valid++;
      continue;
    }
    for (const d of errors) {
      if (!(d.line >= 1 && d.line <= lines + 1 && d.column >= 1 && d.message.length > 0))
        throw new Error(`${where}\nerror outside the file: ${JSON.stringify(d)}`);
    }
  }
  // Both outcomes occur: the mutations are neither all harmless nor all fatal.
  expect(valid).toBeGreaterThan(0);
  expect(valid).toBeLessThan(CASES);
});
