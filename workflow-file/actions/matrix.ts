/**
 * `strategy.matrix` expanded as GitHub documents it: the product of the axes in file order, minus
 * every combination an `exclude` entry matches, then each `include` entry added to every
 * combination it does not contradict on an original axis (or, matching none, as a combination of
 * its own). The parser leaves this to us.
 */
export class MatrixError extends Error {}

/** GitHub's limit per job; beyond it the matrix is refused, never cut short silently. */
export const MAX_ACTIONS_MATRIX = 256;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Every combination of the matrix (`plain` is the matrix mapping as JSON). */
export function expandMatrix(plain: unknown): Record<string, unknown>[] {
  if (!isObject(plain)) throw new MatrixError('matrix must be a mapping of axes to lists of values');
  const axes = Object.entries(plain).filter(([k]) => k !== 'include' && k !== 'exclude');
  for (const [k, v] of axes) {
    if (!Array.isArray(v)) throw new MatrixError(`matrix axis "${k}" must be a list of values`);
  }
  const include = plain.include ?? [];
  const exclude = plain.exclude ?? [];
  if (!Array.isArray(include) || !include.every(isObject))
    throw new MatrixError('matrix include must be a list of mappings');
  if (!Array.isArray(exclude) || !exclude.every(isObject))
    throw new MatrixError('matrix exclude must be a list of mappings');

  let product: Record<string, unknown>[] = axes.length > 0 ? [{}] : [];
  for (const [k, values] of axes as [string, unknown[]][]) {
    const next: Record<string, unknown>[] = [];
    for (const combo of product) for (const v of values) next.push({ ...combo, [k]: v });
    product = next;
    if (product.length > MAX_ACTIONS_MATRIX * 16) break; // refused below; do not build millions
  }
  const original = new Set(axes.map(([k]) => k));
  product = product.filter((c) => !exclude.some((e) => Object.entries(e).every(([k, v]) => same(c[k], v))));

  // Which keys of a combination came from include (and so may be overwritten by a later one).
  const added = product.map(() => new Set<string>());
  const extra: Record<string, unknown>[] = [];
  for (const entry of include) {
    let matched = false;
    product.forEach((combo, i) => {
      const fits = Object.entries(entry).every(
        ([k, v]) => !original.has(k) || !(k in combo) || same(combo[k], v),
      );
      if (!fits) return;
      matched = true;
      for (const [k, v] of Object.entries(entry)) {
        if (original.has(k) && k in combo && !added[i].has(k)) continue;
        combo[k] = v;
        added[i].add(k);
      }
    });
    if (!matched) extra.push({ ...entry });
  }
  const all = [...product, ...extra];
  if (all.length > MAX_ACTIONS_MATRIX)
    throw new MatrixError(`the matrix has ${all.length} combinations; at most ${MAX_ACTIONS_MATRIX} are run`);
  return all.length > 0 ? all : [];
}
