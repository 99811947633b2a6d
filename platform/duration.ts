/**
 * The one duration grammar: `<whole number><unit>` repeated, units d, h, m, s, ms (`90s`, `1h30m`,
 * `500ms`). Settings (platform/config.ts) and workflow files (workflow-file/) read it with
 * different strictness, so each states its policy; `formatDuration` writes what both read.
 * No node:* imports: workflow-file code and the in-VM runner bundle use this too.
 */

export const DURATION_UNITS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
export type DurationUnit = keyof typeof DURATION_UNITS;
/** Largest first: the order formatDuration writes and a strict reader demands. */
const ORDER: DurationUnit[] = ['d', 'h', 'm', 's', 'ms'];

export interface DurationPolicy {
  /** Units this reader knows; others are "unknown unit". */
  units: readonly DurationUnit[];
  /** A bare number (`90`) counts in this unit; unset: a bare number is an error. */
  bareNumberUnit?: DurationUnit;
  /** Units must come largest first and each at most once (`1h30m`, not `30m1h`). */
  ordered: boolean;
}

export type DurationReading =
  | { ok: true; ms: number }
  | { ok: false; problem: 'empty' | 'no-unit' | 'unknown-unit' | 'not-a-duration' | 'order'; unit?: string };

export function readDuration(raw: string, policy: DurationPolicy): DurationReading {
  const s = raw.trim();
  if (s === '') return { ok: false, problem: 'empty' };
  if (/^\d+$/.test(s)) {
    return policy.bareNumberUnit
      ? { ok: true, ms: Number(s) * DURATION_UNITS[policy.bareNumberUnit] }
      : { ok: false, problem: 'no-unit' };
  }
  // `ms` before `m` so that 500ms is not read as 500m followed by garbage.
  const re = /(\d+)(ms|d|h|m|s)/y;
  let total = 0;
  let lastRank = -1;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    const unit = m?.[2] as DurationUnit | undefined;
    if (!m || !unit || !policy.units.includes(unit)) {
      const written = unit ?? /^\d+([a-zA-Z]*)/.exec(s.slice(at))?.[1];
      return written
        ? { ok: false, problem: 'unknown-unit', unit: written }
        : { ok: false, problem: 'not-a-duration' };
    }
    const rank = ORDER.indexOf(unit);
    if (policy.ordered && rank <= lastRank) return { ok: false, problem: 'order' };
    lastRank = rank;
    total += Number(m[1]) * DURATION_UNITS[unit];
    at = re.lastIndex;
  }
  return { ok: true, ms: total };
}

/** `5400000` → `1h30m`: the largest units first, as every reader of this grammar accepts. */
export function formatDuration(ms: number): string {
  let left = ms;
  let out = '';
  for (const unit of ORDER) {
    const n = Math.floor(left / DURATION_UNITS[unit]);
    if (n > 0) {
      out += `${n}${unit}`;
      left -= n * DURATION_UNITS[unit];
    }
  }
  return out || '0s';
}
