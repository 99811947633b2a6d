/**
 * How settings write durations and sizes, without the settings table: the in-VM runner reads
 * its job's retry duration and prints artifact sizes with these, and its bundle must not carry
 * the table (and zod) along.
 */
import { readDuration } from './duration';
import { ConfigError } from './errors';

/** What a reader reports about a bad value: the text after the variable's name. */
export class BadSettingValue extends Error {}

/**
 * Settings read durations with the shared grammar and all its units (d, h, m, s, ms, as workflow
 * files do), leniently: a bare number is seconds and units may come in any order.
 */
const SETTING_DURATION = { units: ['d', 'h', 'm', 's', 'ms'], bareNumberUnit: 's', ordered: false } as const;
export function readSettingDuration(raw: string): number {
  const r = readDuration(raw, SETTING_DURATION);
  if (!r.ok) throw new BadSettingValue(`must be a duration like 90s, 15m, 1h30m or 7d, got "${raw}"`);
  return r.ms;
}
/** Parses durations such as `90s`, `15m`, `1h30m`, or a bare number of seconds. Returns milliseconds. */
export function parseDuration(raw: string, what = 'duration'): number {
  return rethrowAs(what, () => readSettingDuration(raw));
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};
export function readSize(raw: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new BadSettingValue(`must be a size like 1048576, 512KiB, 100MiB or 2GiB, got "${raw}"`);
  return Number(m[1]) * unit;
}
/** Parses sizes such as `1048576`, `512KiB`, `100MiB` or `2GiB` (binary units). Returns bytes. */
export function parseSize(raw: string, what = 'size'): number {
  return rethrowAs(what, () => readSize(raw));
}
/** `536870912` → `512MiB`: exact, in the largest unit that divides it, as parseSize reads it. */
export function formatSizeExact(bytes: number): string {
  for (const [unit, n] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return String(bytes);
}

/** `1536` → `1.5 KiB`: sizes in messages and listings, in the units parseSize reads. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function rethrowAs<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof BadSettingValue) throw new ConfigError(`${what} ${err.message}`);
    throw err;
  }
}
