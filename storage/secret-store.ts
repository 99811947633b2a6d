/**
 * The orchestrator's secrets: a YAML file of `NAME: value` (SOLSTICE_SECRETS_FILE, mode 0600,
 * e.g. a mounted Kubernetes secret). A workflow file's job names the ones it needs
 * (`secrets "DEPLOY_TOKEN"`); provisionMachine looks their values up here and writes them into
 * the machine's job file, so values never enter the workflow file or the workflow history.
 * The log service masks every value of this file in every job's log.
 */
import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, InputError } from '../platform/errors';
import type { NamedSecret } from '../model/secret-mask';

export class SecretStore {
  private constructor(
    private readonly values: ReadonlyMap<string, string>,
    private readonly file: string | undefined,
  ) {}

  static empty(): SecretStore {
    return new SecretStore(new Map(), undefined);
  }

  /** Reads the file now; unset: an empty store. */
  static load(file: string | undefined): SecretStore {
    if (!file) return SecretStore.empty();
    let doc: unknown;
    try {
      // failsafe: values stay strings exactly as written (no numbers, no booleans).
      doc = parseYaml(fs.readFileSync(file, 'utf8'), { schema: 'failsafe' });
    } catch (err) {
      throw new ConfigError(
        `SOLSTICE_SECRETS_FILE ${file} cannot be read as YAML: ${(err as Error).message}`,
        'it must be a mapping of NAME: value',
        { cause: err },
      );
    }
    if (doc === null || doc === undefined || doc === '') return new SecretStore(new Map(), file);
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      throw new ConfigError(`SOLSTICE_SECRETS_FILE ${file} must be a YAML mapping of NAME: value`);
    }
    const values = new Map<string, string>();
    for (const [name, value] of Object.entries(doc)) {
      if (typeof value !== 'string') {
        throw new ConfigError(`SOLSTICE_SECRETS_FILE ${file}: ${name} must be a string value`);
      }
      values.set(name, value);
    }
    return new SecretStore(values, file);
  }

  /** The values of `names`; an unknown name is an error naming it (and never a value). */
  resolve(names: readonly string[]): Record<string, string> {
    const missing = names.filter((n) => !this.values.has(n));
    if (missing.length > 0) {
      throw new InputError(
        `the job needs secret${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which ${this.file ? `${this.file} does not define` : 'no secret store defines (SOLSTICE_SECRETS_FILE is unset)'}`,
        `add ${missing.join(', ')} to the file named by SOLSTICE_SECRETS_FILE on the orchestrator`,
      );
    }
    return Object.fromEntries(names.map((n) => [n, this.values.get(n) as string]));
  }

  /** Every secret, for masking. */
  all(): NamedSecret[] {
    return [...this.values].map(([name, value]) => ({ name, value }));
  }
}
