/** The jobs/steps overview a followed pipeline keeps under its lines on a terminal. */
import { overviewLines, StatusBlock } from '../../../cli/live-overview';

const now = new Date('2026-12-01T12:00:30Z');
const at = (s: number) => new Date(now.getTime() - s * 1000);

test('a line per job: its state, time so far and the step it runs, names aligned', () => {
  const lines = overviewLines(
    [
      { name: 'lint', state: 'success', startedAt: at(30), finishedAt: at(20) },
      { name: 'test[node=20]', state: 'running', startedAt: at(12), step: { index: 2, name: 'unit' } },
      { name: 'deploy', state: 'waiting' },
    ],
    now,
    100,
  );
  expect(lines[0]).toMatch(/^── jobs ─+$/);
  expect(lines.slice(1)).toEqual([
    '✓ lint           success     10.0s',
    '● test[node=20]  running     12.0s  step 2 unit',
    '· deploy         waiting',
  ]);
});

test('lines are cut to the terminal width, so none wraps', () => {
  const lines = overviewLines([{ name: 'x'.repeat(50), state: 'running', startedAt: at(1) }], now, 20);
  for (const l of lines) expect(l.length).toBeLessThanOrEqual(20);
  expect(lines[1].endsWith('…')).toBe(true);
});

test('the block is erased before each write and drawn again under it; close removes it', () => {
  const writes: string[] = [];
  const block = new StatusBlock({ write: (s: string) => writes.push(s) } as unknown as NodeJS.WritableStream);
  block.update(['jobs', 'a running']);
  block.write('a | line 1\n');
  block.update(['jobs', 'a running']); // unchanged: nothing drawn
  block.update(['jobs', 'a success']);
  block.close();
  expect(writes).toEqual([
    'jobs\na running\n',
    '\u001b[2F\u001b[Ja | line 1\njobs\na running\n',
    '\u001b[2F\u001b[Jjobs\na success\n',
    '\u001b[2F\u001b[J',
  ]);
});
