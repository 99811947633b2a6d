/**
 * Temporal over TLS and mTLS, with a CA made here with the openssl CLI: a TLS-terminating proxy
 * in front of the run's dev server stands for a cluster frontend that serves TLS and requires
 * client certificates. Its certificate names only temporal.test, so the server name override is
 * needed too. The CLI (grpc-js) and the worker's connection (the SDK's Rust core) both go
 * through it with the same TEMPORAL_TLS_* settings.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../platform/config';
import { connectWorker } from '../../../platform/temporal';
import { runCli, type CliResult } from '../../support/cli';
import { makeTestCa } from '../../support/test-ca';
import { startTlsProxy, type TlsProxy } from '../../support/tls-proxy';

let dir: string;
let proxy: TlsProxy;
let base: NodeJS.ProcessEnv;
let tlsEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  const target = process.env.SOLSTICE_TEST_TEMPORAL_ADDRESS;
  if (!target) throw new Error('SOLSTICE_TEST_TEMPORAL_ADDRESS is unset: run through jest (global setup)');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-temporal-mtls-'));
  const ca = makeTestCa(dir, 'cluster');
  const server = ca.server('frontend', ['temporal.test']);
  const client = ca.client('solstice');
  proxy = await startTlsProxy({ target, cert: server.cert, key: server.key, clientCa: ca.ca });
  base = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NO_COLOR: '1',
    TEMPORAL_ADDRESS: proxy.address,
    AMQP_URL: 'none',
    DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none',
    BLOB_FS_ROOT: path.join(dir, 'blobs'),
  };
  tlsEnv = {
    ...base,
    TEMPORAL_TLS_CA_PATH: ca.ca,
    TEMPORAL_TLS_CERT_PATH: client.cert,
    TEMPORAL_TLS_KEY_PATH: client.key,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  };
});

afterAll(async () => {
  await proxy?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function line(r: CliResult, check: string): string {
  const found = r.stdout.split('\n').find((l) => l.slice(6).startsWith(`${check} `));
  if (!found) throw new Error(`no "${check}" line in:\n${r.stdout}\n${r.stderr}`);
  return found;
}

test('setup and doctor over mTLS with the CA, a client certificate and the server name', async () => {
  const namespace = `tls-${randomBytes(4).toString('hex')}`;
  const r = await runCli(['temporal', 'setup', '--temporal-namespace', namespace], tlsEnv);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`namespace "${namespace}" on ${proxy.address}: created`);
  const d = await runCli(['doctor'], { ...tlsEnv, TEMPORAL_NAMESPACE: namespace });
  expect(line(d, 'Temporal')).toMatch(
    new RegExp(`^ok {4}Temporal {4}${proxy.address}, mTLS, namespace "${namespace}"`),
  );
  expect(line(d, 'search attrs')).toMatch(/^ok /);
});

test("the worker's connection (the SDK's native core) takes the same settings", async () => {
  const cfg = loadConfig({}, tlsEnv);
  const connection = await connectWorker(cfg);
  try {
    const info = await connection.workflowService.getSystemInfo({});
    expect(info.serverVersion).toBeTruthy();
  } finally {
    await connection.close();
  }
});

test('without a client certificate the server refuses the handshake: FAIL with what to check', async () => {
  const { TEMPORAL_TLS_CERT_PATH: _c, TEMPORAL_TLS_KEY_PATH: _k, ...noClientCert } = tlsEnv;
  const refusedBefore = proxy.refused.length;
  const d = await runCli(['doctor'], noClientCert);
  expect(d.code).toBe(69);
  expect(line(d, 'Temporal')).toMatch(
    /^FAIL {2}Temporal {4}Temporal is not reachable at .* -> fix: check that .* serves TLS, .*TEMPORAL_TLS_CA_PATH.*TEMPORAL_TLS_CERT_PATH/,
  );
  expect(proxy.refused.length).toBeGreaterThan(refusedBefore);
});

test('a certificate that does not name the address host fails without the server name override', async () => {
  const { TEMPORAL_TLS_SERVER_NAME: _n, ...noServerName } = tlsEnv;
  const d = await runCli(['doctor'], noServerName);
  expect(line(d, 'Temporal')).toMatch(/^FAIL .*TEMPORAL_TLS_SERVER_NAME/);
});

test('plaintext against the TLS frontend fails, and says TLS may be what is missing', async () => {
  const d = await runCli(['doctor'], base);
  expect(line(d, 'Temporal')).toMatch(/^FAIL {2}Temporal {4}Temporal is not reachable/);
  expect(line(d, 'Temporal')).toContain('one that serves TLS also needs TEMPORAL_TLS=true');
});

test('a CA path that does not exist stops the command with the setting and file named, exit 2', async () => {
  const missing = path.join(dir, 'missing-ca.pem');
  const r = await runCli(['temporal', 'setup'], { ...tlsEnv, TEMPORAL_TLS_CA_PATH: missing });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`TEMPORAL_TLS_CA_PATH names ${missing}, which cannot be read`);
  expect(r.stderr).toContain('--temporal-tls-ca-path');
  expect(r.stderr).not.toContain('This is a bug');
  const d = await runCli(['doctor'], { ...tlsEnv, TEMPORAL_TLS_CA_PATH: missing });
  expect(line(d, 'Temporal')).toMatch(/^FAIL .*TEMPORAL_TLS_CA_PATH names .* which cannot be read/);
});
