import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, InputError } from '../../../platform/errors';
import { SecretStore } from '../../../storage/secret-store';

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-secret-store-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text, { mode: 0o600 });
  return p;
}

describe('the secret store file', () => {
  test('values stay strings exactly as written, multi-line included', () => {
    const store = SecretStore.load(file('ok.yaml', 'PIN: 0012\nYES_KEY: yes\nCERT: |\n  a\n  b\n'));
    expect(store.resolve(['PIN', 'YES_KEY', 'CERT'])).toEqual({
      PIN: '0012',
      YES_KEY: 'yes',
      CERT: 'a\nb\n',
    });
    expect(store.all().map((s) => s.name)).toEqual(['PIN', 'YES_KEY', 'CERT']);
  });

  test('an unknown name is an error naming it, never a value', () => {
    const store = SecretStore.load(file('one.yaml', 'A_TOKEN: the-value\n'));
    expect(() => store.resolve(['A_TOKEN', 'B_TOKEN'])).toThrow(InputError);
    expect(() => store.resolve(['B_TOKEN'])).toThrow(/B_TOKEN/);
    expect(() => store.resolve(['B_TOKEN'])).not.toThrow(/the-value/);
    expect(() => SecretStore.empty().resolve(['X'])).toThrow(/SOLSTICE_SECRETS_FILE is unset/);
    expect(SecretStore.empty().resolve([])).toEqual({});
  });

  test('a file that is not a mapping of strings, or cannot be read, is a configuration error', () => {
    expect(() => SecretStore.load(file('list.yaml', '- a\n- b\n'))).toThrow(ConfigError);
    expect(() => SecretStore.load(file('nested.yaml', 'A:\n  B: c\n'))).toThrow(/A must be a string/);
    expect(() => SecretStore.load(path.join(dir, 'missing.yaml'))).toThrow(ConfigError);
    expect(SecretStore.load(file('empty.yaml', '')).all()).toEqual([]);
  });
});
