/**
 * docs/workflow-file.md and the parser agree: every `kdl` example parses without a diagnostic,
 * every `kdl invalid` example prints exactly the `text` block that follows it, and a `text`
 * block after a valid example appears in what `solstice workflow show` prints for it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatWorkflow } from '../../../cli/workflow-report';
import { formatDiagnostics, parseWorkflowFile } from '../../../workflow-file';

interface Block {
  info: string;
  body: string;
  line: number;
}

const doc = fs.readFileSync(path.join(__dirname, '../../../docs/workflow-file.md'), 'utf8');

function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
    blocks.push({ info: open[1].trim(), body: `${body.join('\n')}\n`, line: start + 1 });
  }
  return blocks;
}

const blocks = fencedBlocks(doc);
const examples = blocks
  .map((block, i) => ({ block, output: blocks[i + 1]?.info === 'text' ? blocks[i + 1] : undefined }))
  .filter(({ block }) => block.info === 'kdl' || block.info === 'kdl invalid');

test('the doc has examples of both kinds', () => {
  expect(examples.filter((e) => e.block.info === 'kdl').length).toBeGreaterThanOrEqual(6);
  expect(examples.filter((e) => e.block.info === 'kdl invalid').length).toBeGreaterThanOrEqual(2);
});

describe.each(examples.map((e) => [`line ${e.block.line} (${e.block.info})`, e] as const))(
  'docs/workflow-file.md example at %s',
  (_name, { block, output }) => {
    const result = parseWorkflowFile(block.body);
    if (block.info === 'kdl') {
      test('is valid, without warnings', () => {
        expect(result.diagnostics).toEqual([]);
        expect(result.ok).toBe(true);
      });
      if (output) {
        test('shows what the doc says', () => {
          expect(formatWorkflow('workflow.kdl', result.workflow!)).toContain(output.body);
        });
      }
    } else {
      test('prints exactly the errors the doc shows', () => {
        expect(result.ok).toBe(false);
        expect(output).toBeDefined();
        expect(formatDiagnostics('workflow.kdl', result.diagnostics, { source: block.body })).toBe(
          output!.body,
        );
      });
    }
  },
);
