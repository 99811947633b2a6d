/**
 * --help shows every setting's default; these tests read that text from the CLI itself and hold
 * it against the value the setting really defaults to, so neither can be edited alone.
 */
import { Cli } from 'clipanion';
import { buildCli } from '../../../cli/main';
import { SettingsCommand } from '../../../cli/settings-options';
import {
  defaultText,
  loadConfig,
  readSetting,
  SETTINGS,
  type Config,
  type SettingKey,
  type SettingOverrides,
} from '../../../platform/config';
import { ConfigError } from '../../../platform/errors';

const KEYS = Object.keys(SETTINGS) as SettingKey[];
const DEFAULTS = loadConfig({}, {});
const isDerived = (key: SettingKey): boolean => {
  const d: unknown = SETTINGS[key].default;
  return typeof d === 'object' && d !== null && 'derived' in d;
};

/** `[env: X; default: Y]` of every setting flag of every command, as clipanion prints it. */
async function shownDefaults(): Promise<Array<{ command: string; key: SettingKey; shown: string }>> {
  const byFlag = new Map(KEYS.map((k) => [SETTINGS[k].flag, k]));
  const out: Array<{ command: string; key: SettingKey; shown: string }> = [];
  for (const def of (await buildCli()).definitions()) {
    for (const opt of def.options) {
      const key = byFlag.get(opt.definition.split(' ')[0] as `--${string}`);
      if (!key) continue;
      const m = /\[env: ([A-Z0-9_]+); default: (.*)\]$/.exec(opt.description ?? '');
      expect({ command: def.path, flag: opt.definition, env: m?.[1] }).toEqual({
        command: def.path,
        flag: opt.definition,
        env: SETTINGS[key].env,
      });
      out.push({ command: def.path, key, shown: m![2] });
    }
  }
  return out;
}

test('the default --help shows is the default value, for every setting flag of every command', async () => {
  const shown = await shownDefaults();
  expect(new Set(shown.map((s) => s.key)).size).toBeGreaterThanOrEqual(50);
  for (const { command, key, shown: text } of shown) {
    const real = DEFAULTS[key];
    const context = { command, key, text };
    if (isDerived(key)) {
      // Computed from other settings or the machine: the text says from what.
      expect({ ...context, text: defaultText(key) }).toEqual(context);
    } else if (real === undefined) {
      expect({ ...context, fromText: loadConfig({ [key]: undefined }, {})[key] }).toEqual({
        ...context,
        fromText: undefined,
      });
    } else {
      // Fed back in, the text shown gives the default itself ("none": the empty value).
      const fromText = loadConfig({ [key]: text === 'none' ? '' : text }, {})[key];
      expect({ ...context, fromText }).toEqual({ ...context, fromText: real });
    }
  }
});

test('settings without a flag render their default the same way', () => {
  for (const key of KEYS) {
    const text = defaultText(key);
    if (isDerived(key) || DEFAULTS[key] === undefined) continue;
    expect({ key, fromText: loadConfig({ [key]: text === 'none' ? '' : text }, {})[key] }).toEqual({
      key,
      fromText: DEFAULTS[key],
    });
  }
  expect(defaultText('jobTimeoutMs')).toBe('1h');
  expect(defaultText('artifactMaxFileBytes')).toBe('512MiB');
  expect(defaultText('databaseUrl')).toContain('postgresql://postgres:postgres@127.0.0.1:54329/solstice');
});

test('flags are the keys in kebab case, without the unit a duration or size key carries', () => {
  expect(SETTINGS.temporalAddress.flag).toBe('--temporal-address');
  expect(SETTINGS.dbPoolTimeoutMs.flag).toBe('--db-pool-timeout-ms'); // an integer of ms, not a duration
  expect(SETTINGS.jobTimeoutMs.flag).toBe('--job-timeout');
  expect(SETTINGS.s3ConnectTimeoutMs.flag).toBe('--s3-connect-timeout');
  expect(SETTINGS.artifactMaxJobBytes.flag).toBe('--artifact-max-job-size');
  expect(SETTINGS.migrateOnBoot.flag).toBe('--migrate');
  const flags = KEYS.map((k) => SETTINGS[k].flag);
  expect(new Set(flags).size).toBe(flags.length);
});

/** A command taking every setting, to see each flag read back into its own key. */
class EverySettingCommand extends SettingsCommand {
  static override paths = [['every']];
  static override settings: readonly SettingKey[] = KEYS;
  async execute(): Promise<number> {
    return 0;
  }
  read(): Config {
    return this.config();
  }
}

test('every flag given on the command line arrives in its own setting', () => {
  const cli = new Cli({ binaryName: 'solstice' });
  cli.register(EverySettingCommand);
  const argv: string[] = [];
  const expected: SettingOverrides = {};
  for (const key of KEYS) {
    const s = SETTINGS[key];
    // Boolean flags are switches (--migrate); a derived boolean (S3_FORCE_PATH_STYLE) takes a value.
    if (typeof s.default === 'boolean') {
      argv.push(s.flag);
      expected[key] = 'true';
    } else if (!isDerived(key) && DEFAULTS[key] !== undefined && defaultText(key) !== 'none') {
      argv.push(s.flag, defaultText(key));
      expected[key] = defaultText(key);
    }
  }
  const command = cli.process(['every', ...argv]) as EverySettingCommand;
  expect(command.read()).toEqual(loadConfig(expected, process.env));
  expect(Object.keys(expected).length).toBeGreaterThan(30);
});

test('a bad value in the environment names the variable', () => {
  let refused = 0;
  for (const key of KEYS) {
    const env = SETTINGS[key].env;
    let err: unknown;
    try {
      loadConfig({}, { [env]: 'x y' });
    } catch (e) {
      err = e;
    }
    if (err === undefined) continue; // free text: paths, names, lists
    refused += 1;
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message.startsWith(`${env} `)).toBe(true);
  }
  expect(refused).toBeGreaterThan(30);
  expect(() => readSetting('logLevel', { LOG_LEVEL: 'loud' })).toThrow(
    new ConfigError('LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'),
  );
  expect(() => loadConfig({}, { SOLSTICE_DEBUG: 'maybe' })).toThrow(
    'SOLSTICE_DEBUG must be true or false, got "maybe"',
  );
  expect(() => loadConfig({}, { AMQP_URL: 'http://guest:secret@rabbit' })).toThrow(
    'AMQP_URL must be an amqp:// or amqps:// URL, got a http: URL',
  );
});

test('reading one setting ignores a bad value in another', () => {
  expect(readSetting('logLevel', { LOG_LEVEL: 'debug', DB_POOL_MAX_SIZE: 'many' })).toBe('debug');
  expect(readSetting('noColor', { NO_COLOR: '1' })).toBe(true);
  expect(readSetting('noColor', {})).toBe(false);
});

test('`up` takes every setting of the ingress it runs (bridge and webhook serve) as a flag', async () => {
  const defs = (await buildCli()).definitions();
  const options = (path: string) =>
    new Set((defs.find((d) => d.path === path)?.options ?? []).map((o) => o.definition.split(/[ ,]/)[0]));
  const up = options('solstice up');
  const ingress = [...options('solstice webhook serve'), ...options('solstice bridge')].filter((f) =>
    f.startsWith('--'),
  );
  expect(ingress).toEqual(expect.arrayContaining(['--insecure-no-webhook-secret', '--webhook-addr']));
  expect(ingress.filter((f) => !up.has(f))).toEqual([]);
  expect(up.has('--forgejo-token')).toBe(true);
});
