/**
 * Turns a byte stream (a child's stdout or stderr) into log lines.
 *
 * Works on bytes, not strings, so a multi-byte UTF-8 character split across two pipe reads is
 * decoded whole. A line ends at "\n"; a "\r" right before it (CRLF) is dropped. A line longer
 * than `maxLineBytes` is emitted in pieces of at most that many bytes, cut at a UTF-8 character
 * boundary, so one runaway line (a minified file, a progress bar without newlines) can neither
 * exhaust memory nor exceed the log service's message size. end() emits a final line that had
 * no newline.
 */
import { storableLogText } from '../../model/log-text';

export const MAX_LINE_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

export class LineSplitter {
  /** Bytes of the current, unfinished line (kept as the chunks' slices to avoid copying). */
  private parts: Buffer[] = [];
  private partBytes = 0;

  constructor(
    private readonly onLine: (text: string) => void,
    private readonly maxLineBytes: number = MAX_LINE_BYTES,
  ) {
    if (maxLineBytes < 4) throw new RangeError('maxLineBytes must be at least 4 (one UTF-8 character)');
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(LF, start);
      if (nl === -1) {
        this.append(chunk.subarray(start));
        return;
      }
      this.append(chunk.subarray(start, nl));
      this.emit(this.take());
      start = nl + 1;
    }
  }

  /** The input ended: emit what is left as a last line (unless nothing is left). */
  end(): void {
    if (this.partBytes > 0) this.emit(this.take());
  }

  private append(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.parts.push(bytes);
    this.partBytes += bytes.length;
    // One byte of slack for a "\r" that may turn out to belong to a CRLF: a line of exactly
    // maxLineBytes followed by "\r\n" must stay one line, not become a full piece plus "".
    while (
      this.partBytes > this.maxLineBytes + 1 ||
      (this.partBytes === this.maxLineBytes + 1 && !this.endsWithCR())
    ) {
      const all = this.take();
      const cut = utf8Boundary(all, this.maxLineBytes);
      this.emit(all.subarray(0, cut), false);
      const rest = all.subarray(cut);
      this.parts = [rest];
      this.partBytes = rest.length;
    }
  }

  private endsWithCR(): boolean {
    const last = this.parts[this.parts.length - 1];
    return last !== undefined && last[last.length - 1] === CR;
  }

  private take(): Buffer {
    const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.partBytes);
    this.parts = [];
    this.partBytes = 0;
    return all;
  }

  private emit(bytes: Buffer, lineEnd = true): void {
    const body =
      lineEnd && bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.subarray(0, -1) : bytes;
    // Invalid UTF-8 (binary output) becomes U+FFFD: the log line must be a valid proto string;
    // NUL, valid UTF-8 but not storable as PostgreSQL text, becomes U+FFFD as well.
    this.onLine(storableLogText(body.toString('utf8')));
  }
}

/** The largest cut <= max that does not split a UTF-8 character. */
export function utf8Boundary(bytes: Buffer, max: number): number {
  if (bytes.length <= max) return bytes.length;
  let cut = max;
  // Step back over continuation bytes (10xxxxxx); a character is at most 4 bytes long.
  while (cut > max - 3 && (bytes[cut] & 0xc0) === 0x80) cut--;
  return (bytes[cut] & 0xc0) === 0x80 ? max : cut;
}
