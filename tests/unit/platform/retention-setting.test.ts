/** SOLSTICE_RETAIN_* read an age (with days) or last:N, and refuse anything else with the grammar. */
import { loadConfig } from '../../../platform/config';
import { ConfigError } from '../../../platform/errors';

const read = (raw: string) => loadConfig({}, { SOLSTICE_RETAIN_LOGS: raw }).retainLogs;

test('ages, days included', () => {
  expect(read('30d')).toEqual({ maxAgeMs: 30 * 86_400_000 });
  expect(read('1s')).toEqual({ maxAgeMs: 1000 });
  expect(read('1d12h')).toEqual({ maxAgeMs: 36 * 3_600_000 });
});

test('the newest N per repository and branch', () => {
  expect(read('last:20')).toEqual({ keepLast: 20 });
});

test('unset keeps everything', () => {
  expect(loadConfig({}, {}).retainLogs).toBeUndefined();
});

test.each(['0s', 'last:0', 'forever', '30', 'last:x'])('"%s" is refused with what is accepted', (raw) => {
  expect(() => read(raw)).toThrow(ConfigError);
  expect(() => read(raw)).toThrow(/30d, 12h or 90s, or last:<N>|at least last:1/);
});

test('the Temporal namespace retention takes days', () => {
  expect(loadConfig({}, { SOLSTICE_TEMPORAL_RETENTION: '7d' }).temporalRetentionMs).toBe(7 * 86_400_000);
});
