import { parseSeqRange, storableLogText } from '../../../model/log-text';
import { LineSplitter } from '../../../runner/log/lines';

test('NUL and lone surrogates become U+FFFD; everything else is kept', () => {
  expect(storableLogText('a\0b\0')).toBe('a\uFFFDb\uFFFD');
  expect(storableLogText('x\uD800y\uDC00')).toBe('x\uFFFDy\uFFFD');
  expect(storableLogText('ok 😀 \t é')).toBe('ok 😀 \t é');
  // Repeated calls do not depend on each other (no regex state carried over).
  expect([storableLogText('\0'), storableLogText('\0'), storableLogText('ok')]).toEqual([
    '\uFFFD',
    '\uFFFD',
    'ok',
  ]);
});

test("the runner's lines never carry NUL or invalid UTF-8", () => {
  const lines: string[] = [];
  const split = new LineSplitter((l) => lines.push(l));
  split.push(Buffer.from([0x61, 0x00, 0x62, 0x0a, 0xff, 0xfe, 0x0a, 0xe2, 0x82]));
  split.push(Buffer.from([0xac, 0x0a]));
  expect(lines).toEqual(['a\uFFFDb', '\uFFFD\uFFFD', '€']);
});

test('refused ranges parse only when well formed', () => {
  expect(parseSeqRange('4-7')).toEqual({ first: 4, last: 7 });
  expect(parseSeqRange('7-4')).toBeUndefined();
  expect(parseSeqRange('0-1')).toBeUndefined();
  expect(parseSeqRange('x')).toBeUndefined();
});
