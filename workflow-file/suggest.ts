/** "Did you mean": the closest known name to a misspelt one. */

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => {
    const row = new Array<number>(cols).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j < cols; j++) d[0][j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[rows - 1][cols - 1];
}

const normalise = (s: string) => s.toLowerCase().replace(/_/g, '-');

/**
 * The candidate closest to `input`, if close enough to be a plausible typo, or the target of
 * a known alias (e.g. `depends-on` for `needs`).
 */
export function didYouMean(
  input: string,
  candidates: readonly string[],
  aliases: Readonly<Record<string, string>> = {},
): string | undefined {
  const n = normalise(input);
  const alias = aliases[n];
  if (alias && candidates.includes(alias)) return alias;
  const allowed = Math.max(1, Math.floor(Math.max(n.length, 2) / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    // The distance is at least the difference in length: a far longer name (an author's
    // 500 KB identifier) is no typo, and the quadratic distance is not worth computing.
    if (Math.abs(c.length - n.length) > allowed) continue;
    const distance = editDistance(n, normalise(c));
    if (distance < bestDistance) {
      best = c;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= allowed && bestDistance < n.length ? best : undefined;
}
