/**
 * A certificate authority made on the spot with the openssl CLI, and certificates it signs: a
 * server certificate for the names given, and a client certificate for mTLS.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface TestCa {
  ca: string;
  /** Signs a server certificate for `names` (DNS names or IP addresses); returns its files. */
  server(name: string, names: string[]): { cert: string; key: string };
  /** Signs a client certificate (extendedKeyUsage clientAuth); returns its files. */
  client(name: string): { cert: string; key: string };
}

export function makeTestCa(dir: string, name = 'test'): TestCa {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name} test CA`,
    '-keyout',
    `${name}-ca.key`,
    '-out',
    `${name}-ca.pem`,
  );
  const sign = (leaf: string, ext: string) => {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${leaf}`,
      '-keyout',
      `${leaf}.key`,
      '-out',
      `${leaf}.csr`,
    );
    fs.writeFileSync(path.join(dir, `${leaf}.ext`), ext);
    openssl(
      'x509',
      '-req',
      '-in',
      `${leaf}.csr`,
      '-CA',
      `${name}-ca.pem`,
      '-CAkey',
      `${name}-ca.key`,
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${leaf}.ext`,
      '-out',
      `${leaf}.pem`,
    );
    return { cert: path.join(dir, `${leaf}.pem`), key: path.join(dir, `${leaf}.key`) };
  };
  return {
    ca: path.join(dir, `${name}-ca.pem`),
    server: (leaf, names) =>
      sign(
        leaf,
        `subjectAltName=${names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}\n` +
          'extendedKeyUsage=serverAuth\n',
      ),
    client: (leaf) => sign(leaf, 'extendedKeyUsage=clientAuth\n'),
  };
}
