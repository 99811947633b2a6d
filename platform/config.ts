/**
 * Every setting in one place: its environment variable, its CLI flag, its default and what
 * it means. Services and the CLI read settings only through `loadConfig`, and the CLI builds
 * its flags (and the `[env: ...]` notes in --help) from this same table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from './errors';

type Parser<T> = (raw: string, env: string) => T;

export interface Setting<T> {
  env: string;
  flag: `--${string}`;
  description: string;
  parse: Parser<T>;
  /** Computed from the other settings and the environment when neither flag nor env is given. */
  fallback: (cfg: Partial<Config>) => T;
  /** How the default reads in --help. */
  defaultText: string;
}

const str: Parser<string> = (raw) => raw;
const int: Parser<number> = (raw, env) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new ConfigError(`${env} must be a non-negative integer, got "${raw}"`);
  return n;
};
const positiveInt: Parser<number> = (raw, env) => {
  const n = int(raw, env);
  if (n === 0) throw new ConfigError(`${env} must be at least 1, got "${raw}"`);
  return n;
};
const bool: Parser<boolean> = (raw, env) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off|)$/i.test(raw)) return false;
  throw new ConfigError(`${env} must be true or false, got "${raw}"`);
};
const hostPort: Parser<string> = (raw, env) => {
  if (!/^[^\s:]+:\d{1,5}$/.test(raw) && !/^\[[0-9a-f:]+\]:\d{1,5}$/i.test(raw)) {
    throw new ConfigError(`${env} must be host:port (e.g. 127.0.0.1:7233), got "${raw}"`);
  }
  return raw;
};
const url: Parser<string> = (raw, env) => {
  try {
    new URL(raw);
  } catch {
    throw new ConfigError(`${env} must be a URL, got "${raw}"`);
  }
  return raw;
};

/** Parses durations such as `90s`, `15m`, `1h30m`, or a bare number of seconds. Returns milliseconds. */
export function parseDuration(raw: string, what = 'duration'): number {
  const s = raw.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const re = /(\d+)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    total += Number(m[1]) * unit;
    consumed = re.lastIndex;
  }
  if (consumed !== s.length || s.length === 0) {
    throw new ConfigError(`${what} must be a duration like 90s, 15m or 1h30m, got "${raw}"`);
  }
  return total;
}
function oneOf<T extends string>(...values: T[]): Parser<T> {
  return (raw, env) => {
    if ((values as string[]).includes(raw)) return raw as T;
    throw new ConfigError(`${env} must be one of ${values.join(', ')}, got "${raw}"`);
  };
}
const duration: Parser<number> = (raw, env) => parseDuration(raw, env);

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};
/** Parses sizes such as `1048576`, `512KiB`, `100MiB` or `2GiB` (binary units). Returns bytes. */
export function parseSize(raw: string, what = 'size'): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new ConfigError(`${what} must be a size like 1048576, 512KiB, 100MiB or 2GiB, got "${raw}"`);
  return Number(m[1]) * unit;
}
const size: Parser<number> = (raw, env) => parseSize(raw, env);

/** `1536` → `1.5 KiB`: sizes in messages and listings, in the units parseSize reads. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
/** A credential given inline, or as `file:<path>` to read it from a file (e.g. a mounted secret). */
const secret: Parser<string> = (raw, env) => {
  if (!raw.startsWith('file:')) return raw;
  const file = raw.slice('file:'.length);
  try {
    const value = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    if (!value) throw new Error('empty');
    return value;
  } catch (err) {
    throw new ConfigError(
      `${env} names file ${file}, which cannot be read or is empty (${(err as Error).message})`,
    );
  }
};
const amqpUrl: Parser<string> = (raw, env) => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`${env} must be an amqp:// or amqps:// URL`);
  }
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:')
    throw new ConfigError(`${env} must be an amqp:// or amqps:// URL, got a ${u.protocol} URL`);
  return raw;
};

/** `debian-12=2,local=1`: most machines of each label at once. */
const labelLimits: Parser<Record<string, number>> = (raw, env) => {
  const out: Record<string, number> = {};
  for (const part of raw.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const m = /^([^=\s]+)=(\d+)$/.exec(part);
    if (!m)
      throw new ConfigError(`${env} must be <label>=<count>[,...] (e.g. debian-12=2,local=1), got "${part}"`);
    out[m[1]] = Number(m[2]);
  }
  return out;
};
const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}
const fixed =
  <T>(v: T) =>
  (): T =>
    v;

export const EMBEDDED_PG_PORT_DEFAULT = 54329;

export interface Config {
  stateDir: string;
  databaseUrl: string | undefined;
  embeddedPgPort: number;
  dbPoolMaxSize: number;
  dbPoolTimeoutMs: number;
  migrateOnBoot: boolean;
  temporalAddress: string;
  temporalNamespace: string;
  temporalUiPort: number;
  taskQueue: string;
  grpcAddr: string;
  contactAddr: string;
  grpcKeepaliveTimeMs: number;
  grpcKeepaliveTimeoutMs: number;
  grpcMaxMessageBytes: number;
  grpcTlsCert: string | undefined;
  grpcTlsKey: string | undefined;
  grpcTlsCa: string | undefined;
  secretsFile: string | undefined;
  runnerServeAddr: string;
  runnerUrl: string;
  blobFsRoot: string;
  s3Bucket: string | undefined;
  s3Endpoint: string | undefined;
  awsRegion: string;
  s3ForcePathStyle: boolean;
  s3Prefix: string;
  s3ConnectTimeoutMs: number;
  s3RequestTimeoutMs: number;
  s3MaxAttempts: number;
  artifactMaxFileBytes: number;
  artifactMaxJobBytes: number;
  jobPageAddr: string;
  workspaceRoot: string;
  hostId: string;
  hostLabels: string[] | undefined;
  hostMaxMachines: number;
  labelLimits: Record<string, number>;
  hostTtlMs: number;
  provider: 'local' | 'qemu';
  imageMap: string | undefined;
  qemuAccel: 'kvm' | 'tcg' | 'auto';
  sweepIntervalMs: number;
  jobTimeoutMs: number;
  bootTimeoutMs: number;
  otlpEndpoint: string | undefined;
  shutdownGraceMs: number;
  metricsAddr: string | undefined;
  runnerOtlpEndpoint: string | undefined;
  amqpUrl: string;
  amqpPrefetch: number;
  webhookAddr: string;
  webhookBodyLimit: number;
  forgejoWebhookSecret: string | undefined;
  githubWebhookSecret: string | undefined;
  webhookInsecure: boolean;
  forgejoToken: string | undefined;
  forgejoApiUrl: string | undefined;
  githubAppId: string | undefined;
  githubAppPrivateKey: string | undefined;
  githubApiUrl: string;
  publicUrl: string | undefined;
}

export type SettingKey = keyof Config;

export const SETTINGS: { readonly [K in SettingKey]: Setting<Config[K]> } = {
  stateDir: setting({
    env: 'SOLSTICE_STATE_DIR',
    flag: '--state-dir',
    description: 'Where local state lives (embedded PostgreSQL, Temporal dev server DB, blobs)',
    parse: str,
    fallback: () => path.resolve('.state'),
    defaultText: './.state',
  }),
  databaseUrl: setting<string | undefined>({
    env: 'DATABASE_URL',
    flag: '--database-url',
    description: 'PostgreSQL connection string; unset: the embedded PostgreSQL that `solstice up` starts',
    parse: url,
    fallback: fixed(undefined),
    defaultText: `embedded, postgres://postgres@127.0.0.1:${EMBEDDED_PG_PORT_DEFAULT}/solstice`,
  }),
  embeddedPgPort: setting({
    env: 'SOLSTICE_EMBEDDED_PG_PORT',
    flag: '--embedded-pg-port',
    description: 'Port of the embedded PostgreSQL used when DATABASE_URL is unset',
    parse: int,
    fallback: fixed(EMBEDDED_PG_PORT_DEFAULT),
    defaultText: String(EMBEDDED_PG_PORT_DEFAULT),
  }),
  dbPoolMaxSize: setting({
    env: 'DB_POOL_MAX_SIZE',
    flag: '--db-pool-max-size',
    description: 'Maximum PostgreSQL connections per process',
    parse: int,
    fallback: fixed(16),
    defaultText: '16',
  }),
  dbPoolTimeoutMs: setting({
    env: 'DB_POOL_TIMEOUT_MS',
    flag: '--db-pool-timeout-ms',
    description: 'How long to wait for a free PostgreSQL connection, in milliseconds',
    parse: int,
    fallback: fixed(5000),
    defaultText: '5000',
  }),
  migrateOnBoot: setting({
    env: 'SOLSTICE_MIGRATE_ON_BOOT',
    flag: '--migrate',
    description: 'Apply pending database migrations when the service starts',
    parse: bool,
    fallback: fixed(false),
    defaultText: 'false (`solstice up` and `ci-local` always migrate)',
  }),
  temporalAddress: setting({
    env: 'TEMPORAL_ADDRESS',
    flag: '--temporal-address',
    description: 'Temporal frontend host:port',
    parse: hostPort,
    fallback: fixed('127.0.0.1:7233'),
    defaultText: '127.0.0.1:7233',
  }),
  temporalNamespace: setting({
    env: 'TEMPORAL_NAMESPACE',
    flag: '--temporal-namespace',
    description: 'Temporal namespace',
    parse: str,
    fallback: fixed('default'),
    defaultText: 'default',
  }),
  temporalUiPort: setting({
    env: 'TEMPORAL_UI_PORT',
    flag: '--temporal-ui-port',
    description: 'Port of the Temporal Web UI that `solstice up` serves',
    parse: int,
    fallback: fixed(8233),
    defaultText: '8233',
  }),
  taskQueue: setting({
    env: 'SOLSTICE_TASK_QUEUE',
    flag: '--task-queue',
    description: 'Temporal task queue the orchestrator worker polls',
    parse: str,
    fallback: fixed('solstice-jobs'),
    defaultText: 'solstice-jobs',
  }),
  grpcAddr: setting({
    env: 'GRPC_ADDR',
    flag: '--grpc-addr',
    description: 'Where the log service listens for runners (host:port)',
    parse: hostPort,
    fallback: fixed('127.0.0.1:50051'),
    defaultText: '127.0.0.1:50051',
  }),
  contactAddr: setting({
    env: 'ORCH_CONTACT_ADDR',
    flag: '--contact-addr',
    description: 'host:port runners use to reach the log service',
    parse: hostPort,
    fallback: (cfg) => cfg.grpcAddr ?? '127.0.0.1:50051',
    defaultText: 'GRPC_ADDR',
  }),
  grpcKeepaliveTimeMs: setting({
    env: 'GRPC_KEEPALIVE_TIME',
    flag: '--grpc-keepalive-time',
    description: 'How often the log service pings an idle runner connection to find dead ones',
    parse: duration,
    fallback: fixed(20_000),
    defaultText: '20s',
  }),
  grpcKeepaliveTimeoutMs: setting({
    env: 'GRPC_KEEPALIVE_TIMEOUT',
    flag: '--grpc-keepalive-timeout',
    description: 'How long a keepalive ping may go unanswered before the connection is closed',
    parse: duration,
    fallback: fixed(10_000),
    defaultText: '10s',
  }),
  grpcMaxMessageBytes: setting({
    env: 'GRPC_MAX_MESSAGE_BYTES',
    flag: '--grpc-max-message-bytes',
    description: 'Largest gRPC message the log service accepts (a log batch), in bytes',
    parse: positiveInt,
    fallback: fixed(32 * 1024 * 1024),
    defaultText: '33554432 (32 MiB)',
  }),
  grpcTlsCert: setting<string | undefined>({
    env: 'GRPC_TLS_CERT',
    flag: '--grpc-tls-cert',
    description: 'PEM certificate (chain) file of the log service; set with GRPC_TLS_KEY to serve TLS',
    parse: str,
    fallback: fixed(undefined),
    defaultText: 'unset: plaintext',
  }),
  grpcTlsKey: setting<string | undefined>({
    env: 'GRPC_TLS_KEY',
    flag: '--grpc-tls-key',
    description: 'PEM private key file of the log service certificate',
    parse: str,
    fallback: fixed(undefined),
    defaultText: 'unset: plaintext',
  }),
  grpcTlsCa: setting<string | undefined>({
    env: 'GRPC_TLS_CA',
    flag: '--grpc-tls-ca',
    description: 'PEM CA certificate file runners verify the log service with (sent in their job file)',
    parse: str,
    fallback: (cfg) => cfg.grpcTlsCert,
    defaultText: 'GRPC_TLS_CERT (a self-signed certificate is its own CA)',
  }),
  secretsFile: setting<string | undefined>({
    env: 'SOLSTICE_SECRETS_FILE',
    flag: '--secrets-file',
    description: 'YAML file of NAME: value secrets jobs may name (`secrets "NAME"`); masked in every log',
    parse: str,
    fallback: fixed(undefined),
    defaultText: 'unset: no secrets',
  }),
  runnerServeAddr: setting({
    env: 'SOLSTICE_RUNNER_SERVE_ADDR',
    flag: '--runner-serve-addr',
    description: 'Where the runner download server listens (host:port)',
    parse: hostPort,
    fallback: fixed('127.0.0.1:8088'),
    defaultText: '127.0.0.1:8088',
  }),
  runnerUrl: setting({
    env: 'SOLSTICE_RUNNER_URL',
    flag: '--runner-url',
    description: 'URL machines download the runner from',
    parse: url,
    fallback: (cfg) => `http://${cfg.runnerServeAddr ?? '127.0.0.1:8088'}/runner.js`,
    defaultText: 'http://<SOLSTICE_RUNNER_SERVE_ADDR>/runner.js',
  }),
  blobFsRoot: setting({
    env: 'BLOB_FS_ROOT',
    flag: '--blob-fs-root',
    description: 'Root folder of the filesystem blob store (logs, artifacts)',
    parse: str,
    fallback: (cfg) => path.join(cfg.stateDir ?? path.resolve('.state'), 'blobs'),
    defaultText: '<SOLSTICE_STATE_DIR>/blobs',
  }),
  s3Bucket: setting<string | undefined>({
    env: 'S3_BUCKET',
    flag: '--s3-bucket',
    description:
      'S3 bucket for logs and artifacts; unset: the filesystem blob store. Credentials come from the AWS SDK chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...)',
    parse: str,
    fallback: fixed(undefined),
    defaultText: 'unset: BLOB_FS_ROOT is used',
  }),
  s3Endpoint: setting<string | undefined>({
    env: 'S3_ENDPOINT',
    flag: '--s3-endpoint',
    description: 'URL of an S3-compatible server (MinIO, versitygw, Ceph, ...); unset: AWS S3',
    parse: url,
    fallback: fixed(undefined),
    defaultText: 'unset: AWS S3',
  }),
  awsRegion: setting({
    env: 'AWS_REGION',
    flag: '--aws-region',
    description: 'Region of the S3 bucket',
    parse: str,
    fallback: fixed('us-east-1'),
    defaultText: 'us-east-1',
  }),
  s3ForcePathStyle: setting({
    env: 'S3_FORCE_PATH_STYLE',
    flag: '--s3-force-path-style',
    description:
      'Address the bucket as <endpoint>/<bucket> instead of <bucket>.<endpoint> (self-hosted servers)',
    parse: bool,
    fallback: (cfg) => cfg.s3Endpoint !== undefined,
    defaultText: 'true with S3_ENDPOINT, else false',
  }),
  s3Prefix: setting({
    env: 'S3_PREFIX',
    flag: '--s3-prefix',
    description: 'Folder inside the bucket every key is stored under (e.g. solstice/prod)',
    parse: str,
    fallback: fixed(''),
    defaultText: 'none',
  }),
  s3ConnectTimeoutMs: setting({
    env: 'S3_CONNECT_TIMEOUT',
    flag: '--s3-connect-timeout',
    description: 'Time to open a connection to S3 before the attempt fails (e.g. 5s)',
    parse: duration,
    fallback: fixed(5000),
    defaultText: '5s',
  }),
  s3RequestTimeoutMs: setting({
    env: 'S3_REQUEST_TIMEOUT',
    flag: '--s3-request-timeout',
    description:
      'Time one S3 request (e.g. one upload part) may take until the response starts, and the longest pause while streaming',
    parse: duration,
    fallback: fixed(60_000),
    defaultText: '60s',
  }),
  s3MaxAttempts: setting({
    env: 'S3_MAX_ATTEMPTS',
    flag: '--s3-max-attempts',
    description: 'Attempts per S3 request, with exponential backoff between them (1: no retries)',
    parse: positiveInt,
    fallback: fixed(3),
    defaultText: '3',
  }),
  artifactMaxFileBytes: setting({
    env: 'SOLSTICE_ARTIFACT_MAX_FILE_SIZE',
    flag: '--artifact-max-file-size',
    description: 'Largest artifact file the log service accepts (e.g. 512MiB); larger ones are refused',
    parse: size,
    fallback: fixed(512 * 1024 ** 2),
    defaultText: '512MiB',
  }),
  artifactMaxJobBytes: setting({
    env: 'SOLSTICE_ARTIFACT_MAX_JOB_SIZE',
    flag: '--artifact-max-job-size',
    description: 'Most bytes of artifacts one job may upload in total; files past it are refused',
    parse: size,
    fallback: fixed(2 * 1024 ** 3),
    defaultText: '2GiB',
  }),
  jobPageAddr: setting({
    env: 'SOLSTICE_JOB_PAGE_ADDR',
    flag: '--job-page-addr',
    description: 'Where the job page (HTML log, artifacts; the forge status link) listens (host:port)',
    parse: hostPort,
    fallback: fixed('127.0.0.1:8080'),
    defaultText: '127.0.0.1:8080',
  }),
  workspaceRoot: setting({
    env: 'SOLSTICE_WORKSPACE_ROOT',
    flag: '--workspace-root',
    description:
      'Where machines get their work folders (local provider processes; QEMU overlays, seeds, consoles)',
    parse: str,
    fallback: () => path.join(os.tmpdir(), 'solstice-jobs'),
    defaultText: '<tmpdir>/solstice-jobs',
  }),
  hostId: setting({
    env: 'SOLSTICE_HOST_ID',
    flag: '--host-id',
    description: 'Name of this VM host; every machine it makes is tagged with it',
    parse: str,
    fallback: () => os.hostname(),
    defaultText: 'the hostname',
  }),
  hostLabels: setting<string[] | undefined>({
    env: 'SOLSTICE_HOST_LABELS',
    flag: '--host-labels',
    description: 'Labels this host runs machines for, comma-separated (jobs of other labels go elsewhere)',
    parse: list,
    fallback: fixed(undefined),
    defaultText: "every label of the host's providers",
  }),
  hostMaxMachines: setting({
    env: 'SOLSTICE_HOST_MAX_MACHINES',
    flag: '--host-max-machines',
    description: 'Most machines this host runs at once; further jobs wait in the queue',
    parse: positiveInt,
    fallback: fixed(4),
    defaultText: '4',
  }),
  labelLimits: setting<Record<string, number>>({
    env: 'SOLSTICE_LABEL_LIMITS',
    flag: '--label-limits',
    description:
      'Most machines of a label at once over all hosts, e.g. debian-12=2,local=1 (give every worker the same)',
    parse: labelLimits,
    fallback: () => ({}),
    defaultText: 'no per-label limit',
  }),
  hostTtlMs: setting({
    env: 'SOLSTICE_HOST_TTL',
    flag: '--host-ttl',
    description:
      'A host whose worker has not been heard of for this long is dead: it gets no new machines and its leases are reclaimed (it heartbeats every third of it)',
    parse: duration,
    fallback: fixed(60_000),
    defaultText: '60s',
  }),
  provider: setting<'local' | 'qemu'>({
    env: 'SOLSTICE_PROVIDER',
    flag: '--provider',
    description:
      'What machines jobs run on: `local` (a process on this host; trusted code only) or `qemu` (a fresh VM per job, images from SOLSTICE_IMAGE_MAP)',
    parse: oneOf('local', 'qemu'),
    fallback: fixed('local'),
    defaultText: 'local',
  }),
  imageMap: setting<string | undefined>({
    env: 'SOLSTICE_IMAGE_MAP',
    flag: '--image-map',
    description: 'YAML file mapping runs-on labels to VM images and sizes (see docs/qemu.md)',
    parse: str,
    fallback: fixed(undefined),
    defaultText: 'unset (needed with SOLSTICE_PROVIDER=qemu)',
  }),
  qemuAccel: setting<'kvm' | 'tcg' | 'auto'>({
    env: 'SOLSTICE_QEMU_ACCEL',
    flag: '--qemu-accel',
    description:
      'QEMU accelerator for images that name none: kvm, tcg (emulation, slow) or auto (kvm when /dev/kvm is usable and the CPU has vmx/svm)',
    parse: oneOf('kvm', 'tcg', 'auto'),
    fallback: fixed('auto'),
    defaultText: 'auto',
  }),
  sweepIntervalMs: setting({
    env: 'SOLSTICE_SWEEP_INTERVAL',
    flag: '--sweep-interval',
    description:
      'How often a worker removes machines (VMs, processes, work folders) of this host whose job no longer runs; also at start',
    parse: duration,
    fallback: fixed(5 * 60_000),
    defaultText: '5m',
  }),
  jobTimeoutMs: setting({
    env: 'SOLSTICE_JOB_TIMEOUT',
    flag: '--job-timeout',
    description: 'Default time a job may run once its runner started (e.g. 30m, 2h)',
    parse: duration,
    fallback: fixed(60 * 60_000),
    defaultText: '1h',
  }),
  bootTimeoutMs: setting({
    env: 'SOLSTICE_BOOT_TIMEOUT',
    flag: '--boot-timeout',
    description: 'Time a machine may take from provisioning until its runner connects',
    parse: duration,
    fallback: fixed(3 * 60_000),
    defaultText: '3m',
  }),
  otlpEndpoint: setting<string | undefined>({
    env: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    flag: '--otlp-endpoint',
    description:
      'OTLP/gRPC endpoint for traces and metrics (e.g. http://127.0.0.1:4317, Jaeger or a collector); unset: no export',
    parse: url,
    fallback: fixed(undefined),
    defaultText: 'unset',
  }),
  shutdownGraceMs: setting({
    env: 'SOLSTICE_SHUTDOWN_GRACE',
    flag: '--shutdown-grace',
    description:
      'On SIGTERM, how long a service waits for in-flight work (activities, log streams, requests) before it cuts it off',
    parse: duration,
    fallback: fixed(30_000),
    defaultText: '30s',
  }),
  metricsAddr: setting<string | undefined>({
    env: 'SOLSTICE_METRICS_ADDR',
    flag: '--metrics-addr',
    description: 'host:port of a Prometheus endpoint (GET /metrics) for this process; unset: none',
    parse: hostPort,
    fallback: fixed(undefined),
    defaultText: 'unset',
  }),
  runnerOtlpEndpoint: setting<string | undefined>({
    env: 'SOLSTICE_RUNNER_OTLP_ENDPOINT',
    flag: '--runner-otlp-endpoint',
    description:
      "OTLP/gRPC endpoint a job's runner sends its spans to, as the machine reaches it (qemu: this host's 127.0.0.1 endpoint, forwarded into the VM)",
    parse: url,
    fallback: (cfg) => cfg.otlpEndpoint,
    defaultText: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  }),
  amqpUrl: setting({
    env: 'AMQP_URL',
    flag: '--amqp-url',
    description: 'RabbitMQ URL (job requests travel through it from webhooks and enqueue to the bridge)',
    parse: amqpUrl,
    fallback: fixed('amqp://guest:guest@127.0.0.1:5672/%2f'),
    defaultText: 'amqp://guest:guest@127.0.0.1:5672/%2f',
  }),
  amqpPrefetch: setting({
    env: 'AMQP_PREFETCH',
    flag: '--amqp-prefetch',
    description: 'Job requests the bridge works on at once (unacknowledged deliveries)',
    parse: int,
    fallback: fixed(32),
    defaultText: '32',
  }),
  webhookAddr: setting({
    env: 'SOLSTICE_WEBHOOK_ADDR',
    flag: '--webhook-addr',
    description: 'Where the webhook ingress listens (host:port)',
    parse: hostPort,
    fallback: fixed('127.0.0.1:8090'),
    defaultText: '127.0.0.1:8090',
  }),
  webhookBodyLimit: setting({
    env: 'SOLSTICE_WEBHOOK_BODY_LIMIT',
    flag: '--webhook-body-limit',
    description: 'Largest webhook body accepted, in bytes (larger: 413)',
    parse: int,
    fallback: fixed(5 * 1024 * 1024),
    defaultText: '5242880 (5 MiB)',
  }),
  forgejoWebhookSecret: setting<string | undefined>({
    env: 'SOLSTICE_FORGEJO_WEBHOOK_SECRET',
    flag: '--forgejo-webhook-secret',
    description: 'Secret of Forgejo/Gitea webhooks (HMAC-SHA256); `file:<path>` reads it from a file',
    parse: secret,
    fallback: fixed(undefined),
    defaultText: 'unset: /webhooks/forgejo refuses every delivery',
  }),
  githubWebhookSecret: setting<string | undefined>({
    env: 'SOLSTICE_GITHUB_WEBHOOK_SECRET',
    flag: '--github-webhook-secret',
    description: 'Secret of GitHub webhooks (HMAC-SHA256); `file:<path>` reads it from a file',
    parse: secret,
    fallback: fixed(undefined),
    defaultText: 'unset: /webhooks/github refuses every delivery',
  }),
  webhookInsecure: setting({
    env: 'SOLSTICE_WEBHOOK_INSECURE',
    flag: '--insecure-no-webhook-secret',
    description: 'Accept unsigned webhooks on endpoints without a secret. Local experiments only',
    parse: bool,
    fallback: fixed(false),
    defaultText: 'false',
  }),
  forgejoToken: setting<string | undefined>({
    env: 'SOLSTICE_FORGEJO_TOKEN',
    flag: '--forgejo-token',
    description:
      'Forgejo/Gitea API token for commit statuses (scope: repository write); `file:<path>` reads it from a file',
    parse: secret,
    fallback: fixed(undefined),
    defaultText: 'unset: no statuses on Forgejo/Gitea',
  }),
  forgejoApiUrl: setting<string | undefined>({
    env: 'SOLSTICE_FORGEJO_API_URL',
    flag: '--forgejo-api-url',
    description: 'Forgejo/Gitea API base URL for commit statuses',
    parse: url,
    fallback: fixed(undefined),
    defaultText: "<the repository's origin>/api/v1",
  }),
  githubAppId: setting<string | undefined>({
    env: 'GITHUB_APP_ID',
    flag: '--github-app-id',
    description: 'GitHub App id; with GITHUB_APP_PRIVATE_KEY, jobs report as check runs',
    parse: str,
    fallback: fixed(undefined),
    defaultText: 'unset: no check runs on GitHub',
  }),
  githubAppPrivateKey: setting<string | undefined>({
    env: 'GITHUB_APP_PRIVATE_KEY',
    flag: '--github-app-private-key',
    description: "The GitHub App's private key (PEM); `file:<path>` reads it from a file",
    parse: secret,
    fallback: fixed(undefined),
    defaultText: 'unset',
  }),
  githubApiUrl: setting({
    env: 'GITHUB_API_URL',
    flag: '--github-api-url',
    description: 'GitHub REST API base URL (GitHub Enterprise: https://<host>/api/v3)',
    parse: url,
    fallback: fixed('https://api.github.com'),
    defaultText: 'https://api.github.com',
  }),
  publicUrl: setting<string | undefined>({
    env: 'SOLSTICE_PUBLIC_URL',
    flag: '--public-url',
    description:
      'Base URL people open for a job (forge statuses and the Temporal Web UI link <url>/jobs/<job id>)',
    parse: url,
    fallback: fixed(undefined),
    defaultText: 'unset: statuses carry no link',
  }),
};

/**
 * Resolves settings: explicit value (a CLI flag) > environment > fallback.
 * Fallbacks are evaluated in table order so later ones may depend on earlier ones.
 */
export function loadConfig(
  overrides: Partial<Record<SettingKey, string | undefined>> = {},
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const cfg: Partial<Record<SettingKey, unknown>> = {};
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const spec = SETTINGS[key] as Setting<unknown>;
    const explicit = overrides[key];
    const raw = explicit ?? env[spec.env];
    const source = explicit !== undefined ? spec.flag : spec.env;
    cfg[key] =
      raw !== undefined && raw !== '' ? spec.parse(raw, source) : spec.fallback(cfg as Partial<Config>);
  }
  return cfg as Config;
}

/** The URL a client should use for PostgreSQL: the configured one or the embedded server's. */
export function effectiveDatabaseUrl(cfg: Pick<Config, 'databaseUrl' | 'embeddedPgPort'>): string {
  return cfg.databaseUrl ?? embeddedDatabaseUrl(cfg.embeddedPgPort);
}

export function embeddedDatabaseUrl(port: number): string {
  return `postgresql://postgres:postgres@127.0.0.1:${port}/solstice`;
}
