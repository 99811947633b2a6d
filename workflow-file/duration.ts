/** Durations in workflow files: the shared grammar (platform/duration.ts), read strictly. */
import { DURATION_UNITS, readDuration, type DurationPolicy } from '../platform/duration';

export { formatDuration } from '../platform/duration';

/** The longest timeout a job may ask for. */
export const MAX_TIMEOUT_MS = 7 * DURATION_UNITS.d;

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string; hint: string };

/** Every unit, a unit on every number, largest unit first: a workflow file reads unambiguously. */
const WORKFLOW_POLICY: DurationPolicy = { units: ['d', 'h', 'm', 's', 'ms'], ordered: true };

const HINT =
  'write a whole number with a unit, largest unit first: "90s", "15m", "1h30m" (units: d, h, m, s, ms)';

export function parseWorkflowDuration(raw: string): DurationResult {
  const bad = (message: string, hint = HINT): DurationResult => ({ ok: false, message, hint });
  const r = readDuration(raw, WORKFLOW_POLICY);
  if (!r.ok) {
    switch (r.problem) {
      case 'empty':
        return bad('empty duration');
      case 'no-unit': {
        const s = raw.trim();
        return bad(`duration "${raw}" has no unit`, `add a unit: "${s}s" or "${s}m"`);
      }
      case 'unknown-unit':
        return bad(`unknown unit "${r.unit}" in duration "${raw}"`);
      case 'not-a-duration':
        return bad(`"${raw}" is not a duration`);
      case 'order':
        return bad(`duration "${raw}" repeats a unit or lists a smaller unit first`);
    }
  }
  if (r.ms === 0) return bad(`duration "${raw}" is zero`, 'give a positive duration, e.g. "30m"');
  if (r.ms > MAX_TIMEOUT_MS)
    return bad(`duration "${raw}" is longer than the 7d maximum`, 'use at most "7d"');
  return { ok: true, ms: r.ms };
}
