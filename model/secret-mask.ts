/**
 * Secret masking for job logs: every occurrence of a secret's value becomes `***` before a line
 * is stored. The runner masks (so secrets never leave the machine in clear) and the log service
 * masks again with the secrets it knows (defence in depth).
 *
 * Masking works on whole lines as the runner assembled them from the pipes, never on raw pipe
 * chunks, so a secret split across two reads is still one string to look for.
 *
 * - Overlapping and nested matches are merged before replacing, so a secret that is a substring
 *   of another (or overlaps it) never leaves a fragment of the longer one visible: in effect the
 *   longest match wins.
 * - A multi-line value is masked line by line (each of its lines that is long enough), and
 *   `LineMasker` also masks the whole value when its lines appear one after another, including
 *   lines of it too short to mask on their own (`}` of a JSON key, `-----END…-----` of a PEM).
 * - Values shorter than MIN_SECRET_LENGTH characters are not masked: replacing every "1" or "yes"
 *   in a log destroys it while protecting nothing (a 3-character secret is guessed in seconds).
 *   The runner names them (never their values) once in the job log.
 * - A secret that is also an ordinary word (`password`, `release`) is masked wherever that word
 *   appears; the log then shows `***` in unrelated places. That is the price of never showing it.
 */

export const SECRET_MASK = '***';

/** Values shorter than this are not masked (see above). */
export const MIN_SECRET_LENGTH = 4;

/** Environment variable names whose values are treated as secrets: *_TOKEN, *_SECRET, *_PASSWORD, *_KEY. */
const SECRET_NAME = /_(TOKEN|SECRET|PASSWORD|KEY)$/i;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

export interface NamedSecret {
  name: string;
  value: string;
}

/** The secret-named entries of an environment mapping. */
export function secretsFromEnv(env: Record<string, string | undefined>): NamedSecret[] {
  return Object.entries(env)
    .filter((e): e is [string, string] => typeof e[1] === 'string' && isSecretName(e[0]))
    .map(([name, value]) => ({ name, value }));
}

/** A value's lines without a trailing newline (files read into variables usually end with one) or leading blank lines. */
function valueLines(value: string): string[] {
  const lines = value.split(/\r?\n/);
  while (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  while (lines.length > 1 && lines[0] === '') lines.shift();
  return lines;
}

export class SecretMasker {
  /** Names of secrets too short to mask, in the order given, without repeats. */
  readonly tooShort: string[] = [];
  /** Single-line strings to mask wherever they appear in a line. */
  private fragments: string[];
  /** Multi-line values, as their lines, longest first. */
  private readonly multiLine: string[][];

  constructor(secrets: readonly NamedSecret[], minLength: number = MIN_SECRET_LENGTH) {
    const fragments = new Set<string>();
    const multi = new Map<string, string[]>();
    for (const { name, value } of secrets) {
      const lines = valueLines(value);
      const total = lines.join('\n').length;
      if (total < minLength) {
        if (value !== '' && !this.tooShort.includes(name)) this.tooShort.push(name);
        continue;
      }
      for (const line of lines) if (line.length >= minLength) fragments.add(line);
      if (lines.length > 1) multi.set(lines.join('\n'), lines);
    }
    this.fragments = [...fragments].sort((a, b) => b.length - a.length);
    this.multiLine = [...multi.values()].sort((a, b) => b.join('\n').length - a.join('\n').length);
  }

  /**
   * Masks one more value from now on (an Actions step's `::add-mask::`). Only its lines long
   * enough to mask are added; lines already emitted stay as they were.
   */
  add(value: string, minLength: number = MIN_SECRET_LENGTH): void {
    const lines = valueLines(value).filter((l) => l.length >= minLength && !this.fragments.includes(l));
    if (lines.length === 0) return;
    this.fragments = [...this.fragments, ...lines].sort((a, b) => b.length - a.length);
  }

  get isEmpty(): boolean {
    return this.fragments.length === 0 && this.multiLine.length === 0;
  }

  /** One line with every secret (and every long-enough line of a multi-line secret) replaced. */
  maskLine(text: string): string {
    if (this.fragments.length === 0) return text;
    // Every occurrence of every fragment as [start, end); merged, so overlaps leave nothing out.
    let spans: [number, number][] | undefined;
    for (const f of this.fragments) {
      for (let at = text.indexOf(f); at !== -1; at = text.indexOf(f, at + 1)) {
        (spans ??= []).push([at, at + f.length]);
      }
    }
    if (!spans) return text;
    spans.sort((a, b) => a[0] - b[0]);
    let out = '';
    let pos = 0;
    let [start, end] = spans[0];
    for (const [s, e] of spans.slice(1)) {
      if (s <= end) {
        end = Math.max(end, e);
        continue;
      }
      out += text.slice(pos, start) + SECRET_MASK;
      pos = end;
      [start, end] = [s, e];
    }
    return out + text.slice(pos, start) + SECRET_MASK + text.slice(end);
  }

  /**
   * A masker for one stream of lines (one pipe): it holds back lines while they may be the start
   * of a multi-line secret, and emits every line masked, in order. Call end() when the stream ends.
   */
  lineMasker(emit: (text: string) => void): LineMasker {
    return new LineMasker(this, this.multiLine, emit);
  }
}

type Match = 'full' | 'partial' | 'none';

export class LineMasker {
  private pending: string[] = [];

  constructor(
    private readonly masker: SecretMasker,
    private readonly multiLine: readonly string[][],
    private readonly emit: (text: string) => void,
  ) {}

  push(text: string): void {
    if (this.multiLine.length === 0) {
      this.emit(this.masker.maskLine(text));
      return;
    }
    this.pending.push(text);
    this.settle(false);
  }

  /** The stream ended: emit what is held back. */
  end(): void {
    this.settle(true);
  }

  private settle(final: boolean): void {
    const q = this.pending;
    while (q.length > 0) {
      // Longest value first: the first that matches, or may still match, decides.
      let decided: { match: Match; lines: readonly string[] } | undefined;
      for (const lines of this.multiLine) {
        const match = matchAt(q, lines);
        if (match === 'full' || (match === 'partial' && !final)) {
          decided = { match, lines };
          break;
        }
      }
      if (decided?.match === 'partial') return; // wait for the next line
      if (decided) {
        const { lines } = decided;
        const n = lines.length - 1;
        q[0] = q[0].slice(0, q[0].length - lines[0].length) + SECRET_MASK;
        for (let k = 1; k < n; k++) q[k] = SECRET_MASK;
        q[n] = SECRET_MASK + q[n].slice(lines[n].length);
        // The value's last line stays queued: what follows it on that line may start another one.
        for (const line of q.splice(0, n)) this.emit(this.masker.maskLine(line));
        continue;
      }
      this.emit(this.masker.maskLine(q.shift() as string));
    }
  }
}

/** Whether `lines` (a multi-line value) appears in `q` starting at the end of q[0]. */
function matchAt(q: readonly string[], lines: readonly string[]): Match {
  const n = lines.length - 1;
  if (!q[0].endsWith(lines[0])) return 'none';
  for (let k = 1; k <= n; k++) {
    if (k >= q.length) return 'partial';
    if (k < n ? q[k] !== lines[k] : !q[k].startsWith(lines[k])) return 'none';
  }
  return 'full';
}
