/**
 * How many booted, unassigned machines a host keeps per label (warm pools, docs/qemu.md):
 * at least `minIdle` (refilled right after each claim), never more than `maxIdle` (extra ones
 * are destroyed), none older than `maxIdleAgeMs` (replaced by a fresh one). From the image
 * map's `pool:` of an image, or SOLSTICE_POOLS (which wins, and is how the local provider gets one).
 */
import { formatDuration } from '../platform/duration';
import { BadSettingValue, readSettingDuration } from '../platform/units';

export interface PoolSpec {
  minIdle: number;
  maxIdle: number;
  maxIdleAgeMs: number;
}

export const DEFAULT_MAX_IDLE_AGE_MS = 30 * 60_000;

export function checkPoolSpec(label: string, p: PoolSpec): PoolSpec {
  if (p.maxIdle < p.minIdle)
    throw new BadSettingValue(`pool of ${label}: max_idle (${p.maxIdle}) is below min_idle (${p.minIdle})`);
  if (p.maxIdleAgeMs < 1000) throw new BadSettingValue(`pool of ${label}: max_idle_age must be at least 1s`);
  return p;
}

/** `debian-12=1/2/30m,local=1`: label=min_idle[/max_idle[/max_idle_age]]. */
export function parsePools(raw: string): Record<string, PoolSpec> {
  const out: Record<string, PoolSpec> = {};
  for (const part of raw.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const m = /^([^=\s]+)=(\d+)(?:\/(\d+)(?:\/(\S+))?)?$/.exec(part);
    if (!m)
      throw new BadSettingValue(
        `must be <label>=<min_idle>[/<max_idle>[/<max_idle_age>]][,...] (e.g. debian-12=1/2/30m), got "${part}"`,
      );
    const minIdle = Number(m[2]);
    out[m[1]] = checkPoolSpec(m[1], {
      minIdle,
      maxIdle: m[3] === undefined ? minIdle : Number(m[3]),
      maxIdleAgeMs: m[4] === undefined ? DEFAULT_MAX_IDLE_AGE_MS : readSettingDuration(m[4]),
    });
  }
  return out;
}

export function formatPools(pools: Readonly<Record<string, PoolSpec>>): string {
  return Object.entries(pools)
    .map(([label, p]) => `${label}=${p.minIdle}/${p.maxIdle}/${formatDuration(p.maxIdleAgeMs)}`)
    .join(',');
}
