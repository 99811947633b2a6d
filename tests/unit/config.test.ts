import { ConsoleSpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { effectiveDatabaseUrl, loadConfig, parseDuration } from '../../common/config';
import { ConfigError } from '../../common/errors';
import { chooseExporter } from '../../common/telemetry';

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
  expect(() => parseDuration('5d')).toThrow(ConfigError);
});

test('traces go to OTLP when an endpoint is set, to the console on request, else nowhere', () => {
  const fromEnv = (env: NodeJS.ProcessEnv) => chooseExporter(loadConfig({}, env), env);
  expect(fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317' })).toBeInstanceOf(OTLPTraceExporter);
  expect(fromEnv({ OTEL_TRACES_EXPORTER: 'console' })).toBeInstanceOf(ConsoleSpanExporter);
  expect(fromEnv({})).toBeUndefined();
  // The runner sends to the orchestrator's endpoint unless told another (a VM may need another host).
  expect(loadConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317' }).runnerOtlpEndpoint).toBe(
    'http://127.0.0.1:4317',
  );
  expect(() => loadConfig({}, { SOLSTICE_METRICS_ADDR: '9464' })).toThrow(ConfigError);
});
