/** Durations in workflow files: `90s`, `15m`, `1h30m`, `500ms`, `2d`. */

const UNITS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
type Unit = keyof typeof UNITS;
const ORDER: Unit[] = ['d', 'h', 'm', 's', 'ms'];

/** The longest timeout a job may ask for. */
export const MAX_TIMEOUT_MS = 7 * UNITS.d;

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string; hint: string };

const HINT =
  'write a whole number with a unit, largest unit first: "90s", "15m", "1h30m" (units: d, h, m, s, ms)';

export function parseWorkflowDuration(raw: string): DurationResult {
  const bad = (message: string, hint = HINT): DurationResult => ({ ok: false, message, hint });
  const s = raw.trim();
  if (s === '') return bad('empty duration');
  if (/^\d+$/.test(s)) return bad(`duration "${raw}" has no unit`, `add a unit: "${s}s" or "${s}m"`);
  const re = /(\d+)(ms|d|h|m|s)/y;
  let total = 0;
  let lastRank = -1;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) {
      const rest = s.slice(at);
      const unit = /^\d+([a-zA-Z]*)/.exec(rest)?.[1];
      return bad(unit ? `unknown unit "${unit}" in duration "${raw}"` : `"${raw}" is not a duration`);
    }
    const rank = ORDER.indexOf(m[2] as Unit);
    if (rank <= lastRank) return bad(`duration "${raw}" repeats a unit or lists a smaller unit first`);
    lastRank = rank;
    total += Number(m[1]) * UNITS[m[2] as Unit];
    at = re.lastIndex;
  }
  if (total === 0) return bad(`duration "${raw}" is zero`, 'give a positive duration, e.g. "30m"');
  if (total > MAX_TIMEOUT_MS)
    return bad(`duration "${raw}" is longer than the 7d maximum`, 'use at most "7d"');
  return { ok: true, ms: total };
}

/** `5400000` → `1h30m`. */
export function formatDuration(ms: number): string {
  let left = ms;
  let out = '';
  for (const unit of ORDER) {
    const n = Math.floor(left / UNITS[unit]);
    if (n > 0) {
      out += `${n}${unit}`;
      left -= n * UNITS[unit];
    }
  }
  return out || '0s';
}
