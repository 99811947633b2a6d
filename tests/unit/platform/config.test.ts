import { ConsoleSpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import {
  effectiveDatabaseUrl,
  formatSize,
  loadConfig,
  parseDuration,
  parseSize,
} from '../../../platform/config';
import { ConfigError } from '../../../platform/errors';
import { chooseExporter } from '../../../platform/telemetry';

test('flags win over the environment, which wins over defaults', () => {
  const env = { TEMPORAL_ADDRESS: '10.1.2.3:7233', GRPC_ADDR: '0.0.0.0:6000' };
  const cfg = loadConfig({ temporalAddress: '127.0.0.1:9999' }, env);
  expect(cfg.temporalAddress).toBe('127.0.0.1:9999');
  expect(cfg.grpcAddr).toBe('0.0.0.0:6000');
  // ORCH_CONTACT_ADDR falls back to GRPC_ADDR, as in the seed.
  expect(cfg.contactAddr).toBe('0.0.0.0:6000');
  expect(cfg.taskQueue).toBe('solstice-jobs');
  expect(cfg.runnerUrl).toBe('http://127.0.0.1:8088/runner.js');
});

test('an unset DATABASE_URL means the embedded PostgreSQL', () => {
  const cfg = loadConfig({}, { SOLSTICE_EMBEDDED_PG_PORT: '6543' });
  expect(cfg.databaseUrl).toBeUndefined();
  expect(effectiveDatabaseUrl(cfg)).toBe('postgresql://postgres:postgres@127.0.0.1:6543/solstice');
});

test('malformed settings name the variable and what is expected', () => {
  expect(() => loadConfig({}, { DB_POOL_MAX_SIZE: 'many' })).toThrow(
    new ConfigError('DB_POOL_MAX_SIZE must be a non-negative integer, got "many"'),
  );
  expect(() => loadConfig({}, { TEMPORAL_ADDRESS: 'localhost' })).toThrow(
    /TEMPORAL_ADDRESS must be host:port/,
  );
  expect(() => loadConfig({ databaseUrl: 'not a url' }, {})).toThrow(/--database-url must be a URL/);
  expect(() => loadConfig({}, { SOLSTICE_JOB_TIMEOUT: '10 minutes' })).toThrow(
    /SOLSTICE_JOB_TIMEOUT must be a duration like 90s/,
  );
});

test('durations', () => {
  expect(parseDuration('90')).toBe(90_000);
  expect(parseDuration('90s')).toBe(90_000);
  expect(parseDuration('1h30m')).toBe(5_400_000);
  expect(parseDuration('250ms')).toBe(250);
  expect(() => parseDuration('')).toThrow(ConfigError);
  expect(() => parseDuration('5w')).toThrow(ConfigError);
});

test('settings read the one duration grammar, days included (as workflow files do)', () => {
  expect(parseDuration('7d')).toBe(7 * 86_400_000);
  expect(parseDuration('1d12h')).toBe(36 * 3_600_000);
  expect(loadConfig({ sweepIntervalMs: '7d' }).sweepIntervalMs).toBe(7 * 86_400_000);
});

test('sizes: artifact limits read binary units and print them back', () => {
  expect(parseSize('1048576')).toBe(1048576);
  expect(parseSize('512KiB')).toBe(512 * 1024);
  expect(parseSize('100 MiB')).toBe(100 * 1024 ** 2);
  expect(parseSize('2G')).toBe(2 * 1024 ** 3);
  expect(() => parseSize('1.5GiB', 'SOLSTICE_ARTIFACT_MAX_FILE_SIZE')).toThrow(
    'SOLSTICE_ARTIFACT_MAX_FILE_SIZE must be a size like 1048576, 512KiB, 100MiB or 2GiB, got "1.5GiB"',
  );
  expect(() => parseSize('10PB')).toThrow(ConfigError);
  const cfg = loadConfig({}, { SOLSTICE_ARTIFACT_MAX_FILE_SIZE: '1MiB' });
  expect(cfg.artifactMaxFileBytes).toBe(1024 ** 2);
  expect(cfg.artifactMaxJobBytes).toBe(2 * 1024 ** 3);
  expect([0, 1023, 1536, 1024 ** 2, 5 * 1024 ** 3].map(formatSize)).toEqual([
    '0 B',
    '1023 B',
    '1.5 KiB',
    '1.0 MiB',
    '5.0 GiB',
  ]);
});

test('traces go to OTLP when an endpoint is set, to the console on request, else nowhere', () => {
  const fromEnv = (env: NodeJS.ProcessEnv) => chooseExporter(loadConfig({}, env));
  expect(fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317' })).toBeInstanceOf(OTLPTraceExporter);
  expect(fromEnv({ OTEL_TRACES_EXPORTER: 'console' })).toBeInstanceOf(ConsoleSpanExporter);
  expect(fromEnv({})).toBeUndefined();
  // The runner sends to the orchestrator's endpoint unless told another (a VM may need another host).
  expect(loadConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317' }).runnerOtlpEndpoint).toBe(
    'http://127.0.0.1:4317',
  );
  expect(() => loadConfig({}, { SOLSTICE_METRICS_ADDR: '9464' })).toThrow(ConfigError);
});

test('capacity settings: label limits, host labels, machine limit and TTL', () => {
  const cfg = loadConfig(
    { labelLimits: 'debian-12=2, local=0' },
    { SOLSTICE_HOST_LABELS: 'debian-12,local', SOLSTICE_HOST_MAX_MACHINES: '3', SOLSTICE_HOST_TTL: '90s' },
  );
  expect(cfg.labelLimits).toEqual({ 'debian-12': 2, local: 0 });
  expect(cfg.hostLabels).toEqual(['debian-12', 'local']);
  expect(cfg.hostMaxMachines).toBe(3);
  expect(cfg.hostTtlMs).toBe(90_000);
  const defaults = loadConfig({}, {});
  expect(defaults.labelLimits).toEqual({});
  expect(defaults.hostLabels).toBeUndefined();
  expect(defaults.hostMaxMachines).toBe(4);
  expect(() => loadConfig({}, { SOLSTICE_LABEL_LIMITS: 'debian-12:2' })).toThrow(
    new ConfigError(
      'SOLSTICE_LABEL_LIMITS must be <label>=<count>[,...] (e.g. debian-12=2,local=1), got "debian-12:2"',
    ),
  );
  expect(() => loadConfig({ hostMaxMachines: '0' }, {})).toThrow(/--host-max-machines must be at least 1/);
});
