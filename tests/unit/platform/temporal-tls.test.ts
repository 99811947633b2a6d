/**
 * The Temporal connection options every client and worker gets from the settings: TLS from
 * TEMPORAL_TLS* (files read once, a bad one named in a typed error), and the worker tuning
 * checked against itself. Certificates come from a CA made here with the openssl CLI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../platform/config';
import { ConfigError, TlsSettingError } from '../../../platform/errors';
import { temporalTlsOptions, workerTuning } from '../../../platform/temporal';
import { makeTestCa, type TestCa } from '../../support/test-ca';

let dir: string;
let ca: TestCa;
let client: { cert: string; key: string };

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-temporal-tls-'));
  ca = makeTestCa(dir);
  client = ca.client('worker');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const tlsOf = (env: NodeJS.ProcessEnv) => temporalTlsOptions(loadConfig({}, env));

test('no TLS setting: plaintext, as against the dev server', () => {
  expect(tlsOf({})).toBeUndefined();
  expect(tlsOf({ TEMPORAL_TLS: 'false' })).toBeUndefined();
});

test('TEMPORAL_TLS alone: TLS verified with the system CAs', () => {
  expect(tlsOf({ TEMPORAL_TLS: 'true' })).toEqual({});
});

test('CA, client certificate and server name become the SDK options, the files read', () => {
  const tls = tlsOf({
    TEMPORAL_TLS_CA_PATH: ca.ca,
    TEMPORAL_TLS_CERT_PATH: client.cert,
    TEMPORAL_TLS_KEY_PATH: client.key,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
  });
  expect(tls?.serverRootCACertificate?.toString()).toBe(fs.readFileSync(ca.ca, 'utf8'));
  expect(tls?.clientCertPair?.crt.toString()).toBe(fs.readFileSync(client.cert, 'utf8'));
  expect(tls?.clientCertPair?.key.toString()).toBe(fs.readFileSync(client.key, 'utf8'));
  expect(tls?.serverNameOverride).toBe('temporal.internal');
});

test('any TLS file turns TLS on without TEMPORAL_TLS; flags win over the environment', () => {
  expect(tlsOf({ TEMPORAL_TLS_CA_PATH: ca.ca })?.serverRootCACertificate).toBeDefined();
  const cfg = loadConfig({ temporalTlsServerName: 'from-flag' }, { TEMPORAL_TLS_SERVER_NAME: 'from-env' });
  expect(temporalTlsOptions(cfg)).toEqual({ serverNameOverride: 'from-flag' });
});

test('a CA path that does not exist: a typed error naming the setting and the file', () => {
  const missing = path.join(dir, 'nope', 'ca.pem');
  let err: unknown;
  try {
    tlsOf({ TEMPORAL_TLS_CA_PATH: missing });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TlsSettingError);
  expect(err).toBeInstanceOf(ConfigError);
  const e = err as TlsSettingError;
  expect(e.setting).toBe('TEMPORAL_TLS_CA_PATH');
  expect(e.file).toBe(missing);
  expect(e.message).toContain(`TEMPORAL_TLS_CA_PATH names ${missing}, which cannot be read`);
  expect(e.hint).toContain('--temporal-tls-ca-path');
  expect(e.exitCode).toBe(2);
});

test('a file that is not PEM is refused before any connection', () => {
  const der = path.join(dir, 'ca.der');
  fs.writeFileSync(der, Buffer.from([0x30, 0x82, 0x01, 0x0a]));
  expect(() => tlsOf({ TEMPORAL_TLS_CA_PATH: der })).toThrow(/which is not PEM/);
});

test('a client certificate without its key (or the reverse) is refused', () => {
  expect(() => tlsOf({ TEMPORAL_TLS_CERT_PATH: client.cert })).toThrow(
    /TEMPORAL_TLS_CERT_PATH is set but TEMPORAL_TLS_KEY_PATH is not/,
  );
  expect(() => tlsOf({ TEMPORAL_TLS_KEY_PATH: client.key })).toThrow(
    /TEMPORAL_TLS_KEY_PATH is set but TEMPORAL_TLS_CERT_PATH is not/,
  );
});

test('relative TLS paths are taken from the current directory once, when read', () => {
  const cfg = loadConfig({}, { TEMPORAL_TLS_CA_PATH: 'certs/ca.pem' });
  expect(cfg.temporalTlsCaPath).toBe(path.resolve('certs/ca.pem'));
});

describe('worker tuning', () => {
  test('defaults suit a cluster worker and are what the SDK gets', () => {
    expect(workerTuning(loadConfig({}, {}))).toEqual({
      maxConcurrentActivityTaskExecutions: 100,
      maxConcurrentLocalActivityExecutions: 8,
      maxConcurrentWorkflowTaskExecutions: 40,
      maxCachedWorkflows: 1000,
    });
  });

  test('each is a setting with its own variable', () => {
    const cfg = loadConfig(
      {},
      {
        SOLSTICE_TEMPORAL_MAX_ACTIVITIES: '7',
        SOLSTICE_TEMPORAL_MAX_WORKFLOW_TASKS: '3',
        SOLSTICE_TEMPORAL_STICKY_CACHE: '0',
        SOLSTICE_SHUTDOWN_GRACE: '2m',
        DB_POOL_MAX_SIZE: '5',
      },
    );
    expect(workerTuning(cfg)).toEqual({
      maxConcurrentActivityTaskExecutions: 7,
      // Half the database pool: local activities must leave connections for the rest.
      maxConcurrentLocalActivityExecutions: 2,
      maxConcurrentWorkflowTaskExecutions: 3,
      maxCachedWorkflows: 0,
    });
    expect(cfg.shutdownGraceMs).toBe(120_000);
  });

  test('contradictory values are refused with what to change, not silently adjusted', () => {
    const tune = (env: NodeJS.ProcessEnv) => () => workerTuning(loadConfig({}, env));
    expect(tune({ SOLSTICE_TEMPORAL_STICKY_CACHE: '1' })).toThrow(ConfigError);
    expect(
      tune({ SOLSTICE_TEMPORAL_STICKY_CACHE: '10', SOLSTICE_TEMPORAL_MAX_WORKFLOW_TASKS: '20' }),
    ).toThrow(/exceeds SOLSTICE_TEMPORAL_STICKY_CACHE/);
    expect(tune({ SOLSTICE_TEMPORAL_MAX_WORKFLOW_TASKS: '1' })).toThrow(/at least 2 workflow tasks/);
    expect(tune({ SOLSTICE_TEMPORAL_MAX_ACTIVITIES: '0' })).toThrow(/must be at least 1/);
  });
});
