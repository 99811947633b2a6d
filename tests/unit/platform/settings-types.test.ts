/**
 * Compile-time checks, enforced by `tsc -p tsconfig.json` (each @ts-expect-error must meet an
 * error): a key the settings table does not have cannot be read, overridden or made a flag.
 */
import { ConnectedCommand } from '../../../cli/settings-options';
import { loadConfig, readSetting, type Config, type SettingKey } from '../../../platform/config';

function neverRun(): void {
  // @ts-expect-error: a misspelled key is no override
  loadConfig({ jobTimeoutMS: '5m' });
  // @ts-expect-error: nor a setting to read
  readSetting('logLevl');
  // @ts-expect-error: nor a field of Config
  void loadConfig().jobTimeout;

  abstract class MisspelledFlag extends ConnectedCommand {
    // @ts-expect-error: nor a flag of a command
    static override settings: readonly SettingKey[] = [...ConnectedCommand.settings, 'amqpURL'];
  }
  void MisspelledFlag;
  // @ts-expect-error: however the list is written
  ConnectedCommand.withSettings('jobTimeout');

  // Config's types come from the schemas: an enum is its values, a list is an array.
  const provider: Config['provider'] = 'qemu';
  // @ts-expect-error: not a provider
  const docker: Config['provider'] = 'docker';
  const labels: Config['hostLabels'] = undefined;
  const timeout: Config['jobTimeoutMs'] = 1000;
  void [provider, docker, labels, timeout];
}

test('misspelled setting keys are compile errors (checked by tsc)', () => {
  expect(typeof neverRun).toBe('function');
});
