import { LineSplitter, MAX_LINE_BYTES, utf8Boundary } from '../../../runner/log/lines';

function split(chunks: (string | Buffer)[], max?: number): string[] {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), max);
  for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c) : c);
  s.end();
  return lines;
}

describe('LineSplitter', () => {
  test('splits on newlines and keeps empty lines', () => {
    expect(split(['a\nb\n\nc\n'])).toEqual(['a', 'b', '', 'c']);
  });

  test('joins partial lines across chunk boundaries', () => {
    expect(split(['hel', 'lo\nwor', 'ld', '\n'])).toEqual(['hello', 'world']);
  });

  test('drops the CR of CRLF, also when CR and LF arrive in different chunks', () => {
    expect(split(['one\r\ntwo\r', '\nthree\r\n'])).toEqual(['one', 'two', 'three']);
  });

  test('keeps a CR in the middle of a line', () => {
    expect(split(['progress 10%\rprogress 20%\n'])).toEqual(['progress 10%\rprogress 20%']);
  });

  test('emits a final line without newline on end(), and nothing extra after a final newline', () => {
    expect(split(['a\nlast'])).toEqual(['a', 'last']);
    expect(split(['a\n'])).toEqual(['a']);
    expect(split([])).toEqual([]);
    expect(split(['tail\r'])).toEqual(['tail']);
  });

  test('decodes a multi-byte character split across chunks', () => {
    const euro = Buffer.from('€\n'); // e2 82 ac 0a
    expect(split([euro.subarray(0, 1), euro.subarray(1, 2), euro.subarray(2)])).toEqual(['€']);
  });

  test('replaces invalid UTF-8 instead of failing', () => {
    expect(split([Buffer.from([0x61, 0xff, 0x62, 0x0a])])).toEqual(['a\ufffdb']);
  });

  test('splits a very long line into pieces of at most the cap', () => {
    const long = 'x'.repeat(MAX_LINE_BYTES * 2 + 10);
    const lines = split([long.slice(0, 1000), long.slice(1000), '\nnext\n']);
    expect(lines.map((l) => l.length)).toEqual([MAX_LINE_BYTES, MAX_LINE_BYTES, 10, 4]);
    expect(lines.slice(0, 3).join('')).toBe(long);
  });

  test('a line of exactly the cap stays one line, also with CRLF', () => {
    const exact = 'y'.repeat(16);
    expect(split([`${exact}\n`], 16)).toEqual([exact]);
    expect(split([`${exact}\r`, '\n'], 16)).toEqual([exact]);
    expect(split([`${exact}\rz\n`], 16)).toEqual([exact, '\rz']);
  });

  test('never cuts a UTF-8 character when splitting', () => {
    // 5 bytes of ASCII then 4-byte characters: the cap at 8 falls inside the second character.
    const text = `abcde${'😀'.repeat(3)}`;
    const lines = split([`${text}\n`], 8);
    expect(lines.join('')).toBe(text);
    for (const l of lines) {
      expect(Buffer.byteLength(l)).toBeLessThanOrEqual(8);
      expect(l).not.toContain('\ufffd');
    }
  });

  test('handles many lines in one chunk', () => {
    const input = Array.from({ length: 10_000 }, (_, i) => `line ${i}`).join('\n') + '\n';
    const lines = split([input]);
    expect(lines).toHaveLength(10_000);
    expect(lines[9_999]).toBe('line 9999');
  });
});

describe('utf8Boundary', () => {
  test('returns the length when the buffer fits', () => {
    expect(utf8Boundary(Buffer.from('abc'), 10)).toBe(3);
  });
  test('steps back to the start of a character', () => {
    const b = Buffer.from('a€'); // 61 e2 82 ac
    expect(utf8Boundary(b, 2)).toBe(1);
    expect(utf8Boundary(b, 3)).toBe(1);
  });
  test('gives up on garbage (only continuation bytes) and cuts at max', () => {
    expect(utf8Boundary(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80]), 4)).toBe(4);
  });
});
