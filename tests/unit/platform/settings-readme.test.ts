/**
 * README's Configuration table restates defaults for readers who have no CLI at hand; this holds
 * each one against the settings table, so the README cannot drift from the code either.
 */
import fs from 'node:fs';
import path from 'node:path';
import { defaultText, loadConfig, SETTINGS, type SettingKey } from '../../../platform/config';

const KEYS = Object.keys(SETTINGS) as SettingKey[];
const DEFAULTS = loadConfig({}, {});
const byEnv = new Map(KEYS.map((k) => [SETTINGS[k].env, k]));
const isDerived = (key: SettingKey): boolean => {
  const d: unknown = SETTINGS[key].default;
  return typeof d === 'object' && d !== null && 'derived' in d;
};

/** `| `A` / `B` | 1 / 2 | meaning |` → [[A, "1"], [B, "2"]]; `_MAX_JOB_SIZE` abbreviates the variable before. */
function readmeDefaults(): Array<{ env: string; text: string }> {
  const readme = fs.readFileSync(path.join(__dirname, '../../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Operations'));
  const out: Array<{ env: string; text: string }> = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !cells[1].startsWith('`')) continue;
    const envs = [...cells[1].matchAll(/`([A-Z_][A-Z0-9_]*)`/g)].map((m) => m[1]);
    const texts = cells[2].split(' / ');
    envs.forEach((env, i) => {
      const full = env.startsWith('_') ? KEYS.map((k) => SETTINGS[k].env).find((e) => e.endsWith(env)) : env;
      out.push({ env: full ?? env, text: texts.length === envs.length ? texts[i] : cells[2] });
    });
  }
  return out;
}

test('every default README lists is the setting’s default', () => {
  const rows = readmeDefaults();
  expect(rows.length).toBeGreaterThan(40);
  for (const { env, text } of rows) {
    const key = byEnv.get(env);
    expect({ env, known: key !== undefined }).toEqual({ env, known: true });
    if (!key) continue;
    const real = DEFAULTS[key];
    const value = /^`([^`]*)`/.exec(text)?.[1] ?? /^(\d+|true|false)\b/.exec(text)?.[1];
    const row = { env, text };
    if (isDerived(key)) {
      // Computed defaults: where README names a variable, the CLI's text names it too.
      if (value && byEnv.has(value))
        expect({ ...row, help: defaultText(key).includes(value) }).toEqual({ ...row, help: true });
    } else if (value === undefined) {
      // Words, not a value: "none" is the empty value, anything else ("unset: ...") means unset.
      if (text === 'none') expect({ ...row, help: defaultText(key) }).toEqual({ ...row, help: 'none' });
      else expect({ ...row, real }).toEqual({ ...row, real: undefined });
    } else {
      expect({
        ...row,
        parsed: loadConfig({ [key]: value }, {})[key],
      }).toEqual({
        ...row,
        parsed: real,
      });
    }
  }
});
