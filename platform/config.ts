/**
 * Every setting in one place: its environment variable, its type (a zod schema that reads the
 * raw text), its default and what it means. Everything else is derived from that declaration:
 * the `Config` type, the CLI flag (the key in kebab case), and the default shown in --help
 * (rendered from the default value by the formatter whose output the type reads back), so the
 * help text cannot drift from the value. Services, the CLI and every process-environment read
 * go through `loadConfig` or `readSetting`.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import type { z } from 'zod';
import { formatDuration, readDuration } from './duration';
import { formatPools, parsePools } from '../capacity/pool-spec';
import { ConfigError } from './errors';
import { readHostPort } from './net';
import { BadSettingValue, formatSizeExact, readSettingDuration, readSize } from './units';

// The readers of durations and sizes live in ./units (the runner uses them without the table).
export { formatSize, formatSizeExact, parseDuration, parseSize } from './units';

/** How a setting's raw text becomes its value, and how a value is written back as such text. */
export interface SettingType<T> {
  schema: z.ZodType<T, string>;
  format: (value: T) => string;
  /**
   * Key suffix naming the unit the program holds, and what the flag says instead: a duration
   * key ends in `Ms` but its flag takes `90s`, so `jobTimeoutMs` is `--job-timeout`.
   */
  keySuffix?: { key: string; flag: string };
}

/**
 * zod, loaded on the first setting read rather than with this module: every CLI command imports
 * the table for its flags and --help, and loading zod costs more than `solstice --version` may.
 */
let zod: typeof z | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports -- deferred on purpose (above)
const loadZod = (): typeof z => (zod ??= (require('zod') as typeof import('zod')).z);

/** A schema built when first used (see loadZod). */
function lazySchema<T>(build: (zz: typeof z) => z.ZodType<T, string>): {
  readonly schema: z.ZodType<T, string>;
} {
  let schema: z.ZodType<T, string> | undefined;
  return {
    get schema() {
      return (schema ??= build(loadZod()));
    },
  };
}

/** A type from a reader that throws BadSettingValue; the zod schema turns that into an issue. */
function settingType<T>(
  read: (raw: string) => T,
  format: (value: T) => string,
  keySuffix?: SettingType<T>['keySuffix'],
): SettingType<T> {
  const type = lazySchema((zz) =>
    zz.string().transform((raw, ctx): T => {
      try {
        return read(raw);
      } catch (err) {
        if (!(err instanceof BadSettingValue)) throw err;
        ctx.issues.push({ code: 'custom', message: err.message, input: raw });
        return zz.NEVER;
      }
    }),
  );
  return Object.assign(type, { format, ...(keySuffix ? { keySuffix } : {}) });
}

const str = settingType((raw) => raw, String);
/** A folder, made absolute once when read, so every later use means the same place. */
const absolutePath = settingType((raw) => path.resolve(raw), String);
function readInt(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new BadSettingValue(`must be a non-negative integer, got "${raw}"`);
  return n;
}
const int = settingType(readInt, String);
const positiveInt = settingType((raw) => {
  const n = readInt(raw);
  if (n === 0) throw new BadSettingValue(`must be at least 1, got "${raw}"`);
  return n;
}, String);
const bool = settingType((raw) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off|)$/i.test(raw)) return false;
  throw new BadSettingValue(`must be true or false, got "${raw}"`);
}, String);
/** NO_COLOR's convention (no-color.org): set to anything non-empty means yes. */
const present = settingType(
  () => true,
  (v) => (v ? '1' : ''),
);
const hostPort = settingType((raw) => {
  if (!readHostPort(raw)) throw new BadSettingValue(`must be host:port (e.g. 127.0.0.1:7233), got "${raw}"`);
  return raw;
}, String);
const url = settingType((raw) => {
  try {
    new URL(raw);
  } catch {
    throw new BadSettingValue(`must be a URL, got "${raw}"`);
  }
  return raw;
}, String);
function oneOf<const T extends readonly [string, ...string[]]>(...values: T): SettingType<T[number]> {
  const type = lazySchema(
    (zz) =>
      zz.enum(values, {
        error: (issue) => `must be one of ${values.join(', ')}, got "${String(issue.input)}"`,
      }) as unknown as z.ZodType<T[number], string>,
  );
  return Object.assign(type, { format: String });
}

const duration = settingType(readSettingDuration, formatDuration, { key: 'Ms', flag: '' });
const size = settingType(readSize, formatSizeExact, { key: 'Bytes', flag: 'Size' });

/**
 * How long something that grows is kept: an age (`30d`, `12h`, `1s`), or `last:N`, the newest N
 * per repository and branch. Read by storage/retention.ts.
 */
export type Retention = { maxAgeMs: number } | { keepLast: number };
const RETENTION_DURATION = { units: ['d', 'h', 'm', 's'], ordered: false } as const;
const retention = settingType(
  (raw): Retention => {
    const last = /^last:(\d+)$/.exec(raw.trim());
    if (last) {
      if (Number(last[1]) < 1) throw new BadSettingValue(`must keep at least last:1, got "${raw}"`);
      return { keepLast: Number(last[1]) };
    }
    const r = readDuration(raw, RETENTION_DURATION);
    if (!r.ok || r.ms <= 0)
      throw new BadSettingValue(
        `must be an age like 30d, 12h or 90s, or last:<N> (the newest N per repository and branch), got "${raw}"`,
      );
    return { maxAgeMs: r.ms };
  },
  (r) => ('keepLast' in r ? `last:${r.keepLast}` : formatDuration(r.maxAgeMs)),
);
/** Temporal's namespace retention: whole seconds, days allowed (Temporal's own minimum is a day). */
const longDuration = settingType(
  (raw) => {
    const r = readDuration(raw, RETENTION_DURATION);
    if (!r.ok || r.ms <= 0) throw new BadSettingValue(`must be a duration like 7d or 36h, got "${raw}"`);
    return r.ms;
  },
  formatDuration,
  { key: 'Ms', flag: '' },
);

/** A credential given inline, or as `file:<path>` to read it from a file (e.g. a mounted secret). */
const secret = settingType((raw) => {
  if (!raw.startsWith('file:')) return raw;
  const file = raw.slice('file:'.length);
  try {
    const value = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    if (!value) throw new Error('empty');
    return value;
  } catch (err) {
    throw new BadSettingValue(
      `names file ${file}, which cannot be read or is empty (${(err as Error).message})`,
    );
  }
}, String);
/** AMQP_URL=none: no broker at all (no bridge, no webhooks; enqueue starts runs directly). */
export const AMQP_OFF = 'none';
/** The URL is left out of errors: it may carry the broker password. */
const amqpUrl = settingType((raw) => {
  if (raw === AMQP_OFF) return raw;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new BadSettingValue(`must be an amqp:// or amqps:// URL, or ${AMQP_OFF}`);
  }
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:')
    throw new BadSettingValue(`must be an amqp:// or amqps:// URL, got a ${u.protocol} URL`);
  return raw;
}, String);

/** A dotted AMQP name part: letters, digits, `.`, `_`, `-` (what the broker UI and policies read well). */
const amqpPrefix = settingType((raw) => {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/.test(raw))
    throw new BadSettingValue(`must be letters, digits, '.', '_' or '-' (e.g. solstice.prod), got "${raw}"`);
  return raw;
}, String);

/** `debian-12=2,local=1`: most machines of each label at once. */
const labelLimits = settingType(
  (raw) => {
    const out: Record<string, number> = {};
    for (const part of raw.split(',').map((p) => p.trim())) {
      if (part === '') continue;
      const m = /^([^=\s]+)=(\d+)$/.exec(part);
      if (!m)
        throw new BadSettingValue(`must be <label>=<count>[,...] (e.g. debian-12=2,local=1), got "${part}"`);
      out[m[1]] = Number(m[2]);
    }
    return out;
  },
  (limits) =>
    Object.entries(limits)
      .map(([label, n]) => `${label}=${n}`)
      .join(','),
);
/** `debian-12=1/2/30m,local=1`: warm pools per label (capacity/pool-spec.ts). */
const pools = settingType(parsePools, formatPools);
/** `debian-12=ubuntu-latest+linux,local=docker`: the Actions runs-on labels each machine label provides. */
const runsOnMap = settingType(
  (raw) => {
    const out: Record<string, string[]> = {};
    for (const part of raw.split(',').map((p) => p.trim())) {
      if (part === '') continue;
      const m = /^([^=\s]+)=([^=\s]*)$/.exec(part);
      if (!m)
        throw new BadSettingValue(
          `must be <label>=<runs-on label>[+...][,...] (e.g. debian-12=ubuntu-latest+linux), got "${part}"`,
        );
      out[m[1]] = m[2].split('+').filter((l) => l !== '');
    }
    return out;
  },
  (map) =>
    Object.entries(map)
      .map(([label, provides]) => `${label}=${provides.join('+')}`)
      .join(','),
);
const list = settingType(
  (raw) =>
    raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  (values) => values.join(','),
);

/**
 * Settings resolved so far, in table order. Untyped on purpose: the Config type is inferred from
 * the table, so a default inside the table cannot name it without a circular type.
 */
type Earlier = Readonly<Record<string, unknown>>;
/** A default computed from earlier settings or the machine; `text` is how --help describes it. */
export interface Derived<T> {
  derived: (earlier: Earlier) => T;
  text: string;
}
function derived<T>(text: string, fn: (earlier: Earlier) => T): Derived<T> {
  return { derived: fn, text };
}

export interface Setting<T> {
  env: string;
  type: SettingType<Exclude<T, undefined>>;
  description: string;
  default: T | Derived<T>;
  /** Optional settings: what leaving it unset means, shown as its default in --help. */
  unset?: string;
  /** Only where the key's kebab case would read wrong on the command line. */
  flag?: `--${string}`;
}

function setting<T>(s: {
  env: string;
  type: SettingType<T>;
  description: string;
  // The type names T: a literal default ('local') must not widen an enum's T to string.
  default: NoInfer<T> | Derived<NoInfer<T>>;
  flag?: `--${string}`;
}): Setting<T> {
  return s as Setting<T>;
}
function optional<T>(s: {
  env: string;
  type: SettingType<T>;
  description: string;
  unset?: string;
  default?: Derived<T | undefined>;
}): Setting<T | undefined> {
  return { default: undefined, ...s } as Setting<T | undefined>;
}

export const EMBEDDED_PG_PORT_DEFAULT = 54329;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** Where the repository (and its .tools folder) is, from the source or the built dist/ tree. */
const REPO_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');

const DECLARED = {
  stateDir: setting({
    env: 'SOLSTICE_STATE_DIR',
    type: absolutePath,
    description:
      'Where local state lives (embedded PostgreSQL, Temporal dev server DB, blobs); a relative path is taken from the current directory',
    // Anchored at the installation, not the current directory: `artifacts get` from another
    // folder must find the blobs `up` stored, and `doctor` in /tmp must not create /tmp/.state.
    default: derived('<solstice install dir>/.state', () => path.join(REPO_ROOT, '.state')),
  }),
  databaseUrl: optional({
    env: 'DATABASE_URL',
    type: url,
    description: 'PostgreSQL connection string; unset: the embedded PostgreSQL that `solstice up` starts',
    unset: `embedded, ${embeddedDatabaseUrl(EMBEDDED_PG_PORT_DEFAULT)}`,
  }),
  embeddedPgPort: setting({
    env: 'SOLSTICE_EMBEDDED_PG_PORT',
    type: int,
    description: 'Port of the embedded PostgreSQL used when DATABASE_URL is unset',
    default: EMBEDDED_PG_PORT_DEFAULT,
  }),
  dbPoolMaxSize: setting({
    env: 'DB_POOL_MAX_SIZE',
    type: int,
    description: 'Maximum PostgreSQL connections per process',
    default: 16,
  }),
  dbPoolTimeoutMs: setting({
    env: 'DB_POOL_TIMEOUT_MS',
    type: int,
    description: 'How long to wait for a free PostgreSQL connection, in milliseconds',
    default: 5000,
  }),
  migrateOnBoot: setting({
    env: 'SOLSTICE_MIGRATE_ON_BOOT',
    type: bool,
    description:
      'Apply pending database migrations when the service starts (`solstice up` and `ci-local` always migrate)',
    default: false,
    flag: '--migrate',
  }),
  temporalAddress: setting({
    env: 'TEMPORAL_ADDRESS',
    type: hostPort,
    description: 'Temporal frontend host:port',
    default: '127.0.0.1:7233',
  }),
  temporalNamespace: setting({
    env: 'TEMPORAL_NAMESPACE',
    type: str,
    description: 'Temporal namespace',
    default: 'default',
  }),
  // Named as the Temporal CLI names them, so one environment serves `solstice` and `temporal`.
  temporalTlsCaPath: optional({
    env: 'TEMPORAL_TLS_CA_PATH',
    type: absolutePath,
    description: "PEM CA certificate(s) to verify the Temporal server's certificate with (a private CA)",
    unset: 'unset: the system CAs (when TLS is on)',
  }),
  temporalTlsCertPath: optional({
    env: 'TEMPORAL_TLS_CERT_PATH',
    type: absolutePath,
    description: 'PEM client certificate (chain) for mTLS to Temporal; set with TEMPORAL_TLS_KEY_PATH',
    unset: 'unset: no client certificate',
  }),
  temporalTlsKeyPath: optional({
    env: 'TEMPORAL_TLS_KEY_PATH',
    type: absolutePath,
    description: 'PEM private key of the Temporal client certificate',
    unset: 'unset',
  }),
  temporalTlsServerName: optional({
    env: 'TEMPORAL_TLS_SERVER_NAME',
    type: str,
    description:
      "Name the Temporal server's certificate must carry, when it differs from TEMPORAL_ADDRESS's host (e.g. behind a load balancer)",
    unset: "unset: TEMPORAL_ADDRESS's host",
  }),
  temporalTls: setting({
    env: 'TEMPORAL_TLS',
    type: bool,
    description:
      'Connect to Temporal over TLS, verifying the server with the system CAs unless TEMPORAL_TLS_CA_PATH names one (on by itself when any TEMPORAL_TLS_* is set)',
    default: false,
  }),
  temporalMaxConcurrentActivities: setting({
    env: 'SOLSTICE_TEMPORAL_MAX_ACTIVITIES',
    type: positiveInt,
    description:
      'Activities a worker runs at once on each of its task queues (provisioning, job watching, statuses); most of them wait on I/O',
    default: 100,
  }),
  temporalMaxConcurrentWorkflowTasks: setting({
    env: 'SOLSTICE_TEMPORAL_MAX_WORKFLOW_TASKS',
    type: positiveInt,
    description: 'Workflow tasks a worker processes at once (CPU-bound; a few per core)',
    default: 40,
  }),
  temporalStickyCacheSize: setting({
    env: 'SOLSTICE_TEMPORAL_STICKY_CACHE',
    type: int,
    description:
      'Workflow runs a worker keeps in memory between their tasks (sticky cache); a cached run needs no history replay. 0: none',
    default: 1000,
  }),
  temporalUiPort: setting({
    env: 'TEMPORAL_UI_PORT',
    type: int,
    description: 'Port of the Temporal Web UI that `solstice up` serves',
    default: 8233,
  }),
  taskQueue: setting({
    env: 'SOLSTICE_TASK_QUEUE',
    type: str,
    description: 'Temporal task queue the orchestrator worker polls',
    default: 'solstice-jobs',
  }),
  grpcAddr: setting({
    env: 'GRPC_ADDR',
    type: hostPort,
    description: 'Where the log service listens for runners (host:port)',
    default: '127.0.0.1:50051',
  }),
  contactAddr: setting({
    env: 'ORCH_CONTACT_ADDR',
    type: hostPort,
    description: 'host:port runners use to reach the log service',
    default: derived('GRPC_ADDR', (c) => c.grpcAddr as string),
  }),
  grpcKeepaliveTimeMs: setting({
    env: 'GRPC_KEEPALIVE_TIME',
    type: duration,
    description: 'How often the log service pings an idle runner connection to find dead ones',
    default: 20_000,
  }),
  grpcKeepaliveTimeoutMs: setting({
    env: 'GRPC_KEEPALIVE_TIMEOUT',
    type: duration,
    description: 'How long a keepalive ping may go unanswered before the connection is closed',
    default: 10_000,
  }),
  grpcMaxMessageBytes: setting({
    env: 'GRPC_MAX_MESSAGE_BYTES',
    type: positiveInt,
    description: 'Largest gRPC message the log service accepts (a log batch), in bytes',
    default: 32 * 1024 * 1024,
  }),
  grpcTlsCert: optional({
    env: 'GRPC_TLS_CERT',
    type: str,
    description: 'PEM certificate (chain) file of the log service; set with GRPC_TLS_KEY to serve TLS',
    unset: 'unset: plaintext',
  }),
  grpcTlsKey: optional({
    env: 'GRPC_TLS_KEY',
    type: str,
    description: 'PEM private key file of the log service certificate',
    unset: 'unset: plaintext',
  }),
  grpcTlsCa: optional({
    env: 'GRPC_TLS_CA',
    type: str,
    description: 'PEM CA certificate file runners verify the log service with (sent in their job file)',
    default: derived(
      'GRPC_TLS_CERT (a self-signed certificate is its own CA)',
      (c) => c.grpcTlsCert as string | undefined,
    ),
  }),
  secretsFile: optional({
    env: 'SOLSTICE_SECRETS_FILE',
    type: str,
    description: 'YAML file of NAME: value secrets jobs may name (`secrets "NAME"`); masked in every log',
    unset: 'unset: no secrets',
  }),
  runnerServeAddr: setting({
    env: 'SOLSTICE_RUNNER_SERVE_ADDR',
    type: hostPort,
    description: 'Where the runner download server listens (host:port)',
    default: '127.0.0.1:8088',
  }),
  runnerUrl: setting({
    env: 'SOLSTICE_RUNNER_URL',
    type: url,
    description: 'URL machines download the runner from',
    default: derived(
      'http://<SOLSTICE_RUNNER_SERVE_ADDR>/runner.js',
      (c) => `http://${c.runnerServeAddr as string}/runner.js`,
    ),
  }),
  blobFsRoot: setting({
    env: 'BLOB_FS_ROOT',
    type: absolutePath,
    description: 'Root folder of the filesystem blob store (logs, artifacts)',
    default: derived('<SOLSTICE_STATE_DIR>/blobs', (c) => path.join(c.stateDir as string, 'blobs')),
  }),
  s3Bucket: optional({
    env: 'S3_BUCKET',
    type: str,
    description:
      'S3 bucket for logs and artifacts; unset: the filesystem blob store. Credentials come from the AWS SDK chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...)',
    unset: 'unset: BLOB_FS_ROOT is used',
  }),
  s3Endpoint: optional({
    env: 'S3_ENDPOINT',
    type: url,
    description: 'URL of an S3-compatible server (MinIO, versitygw, Ceph, ...); unset: AWS S3',
    unset: 'unset: AWS S3',
  }),
  awsRegion: setting({
    env: 'AWS_REGION',
    type: str,
    description: 'Region of the S3 bucket',
    default: 'us-east-1',
  }),
  s3ForcePathStyle: setting({
    env: 'S3_FORCE_PATH_STYLE',
    type: bool,
    description:
      'Address the bucket as <endpoint>/<bucket> instead of <bucket>.<endpoint> (self-hosted servers)',
    default: derived('true with S3_ENDPOINT, else false', (c) => c.s3Endpoint !== undefined),
  }),
  s3Prefix: setting({
    env: 'S3_PREFIX',
    type: str,
    description: 'Folder inside the bucket every key is stored under (e.g. solstice/prod)',
    default: '',
  }),
  s3ConnectTimeoutMs: setting({
    env: 'S3_CONNECT_TIMEOUT',
    type: duration,
    description: 'Time to open a connection to S3 before the attempt fails (e.g. 5s)',
    default: 5000,
  }),
  s3RequestTimeoutMs: setting({
    env: 'S3_REQUEST_TIMEOUT',
    type: duration,
    description:
      'Time one S3 request (e.g. one upload part) may take until the response starts, and the longest pause while streaming',
    default: 60_000,
  }),
  s3MaxAttempts: setting({
    env: 'S3_MAX_ATTEMPTS',
    type: positiveInt,
    description: 'Attempts per S3 request, with exponential backoff between them (1: no retries)',
    default: 3,
  }),
  artifactMaxFileBytes: setting({
    env: 'SOLSTICE_ARTIFACT_MAX_FILE_SIZE',
    type: size,
    description: 'Largest artifact file the log service accepts (e.g. 512MiB); larger ones are refused',
    default: 512 * 1024 ** 2,
  }),
  artifactMaxJobBytes: setting({
    env: 'SOLSTICE_ARTIFACT_MAX_JOB_SIZE',
    type: size,
    description: 'Most bytes of artifacts one job may upload in total; files past it are refused',
    default: 2 * 1024 ** 3,
  }),
  jobPageAddr: setting({
    env: 'SOLSTICE_JOB_PAGE_ADDR',
    type: hostPort,
    description: 'Where the job page (HTML log, artifacts; the forge status link) listens (host:port)',
    default: '127.0.0.1:8080',
  }),
  workspaceRoot: setting({
    env: 'SOLSTICE_WORKSPACE_ROOT',
    type: str,
    description:
      'Where machines get their work folders (local provider processes; QEMU overlays, seeds, consoles)',
    default: derived('<tmpdir>/solstice-jobs', () => path.join(os.tmpdir(), 'solstice-jobs')),
  }),
  localHostCache: setting({
    env: 'SOLSTICE_LOCAL_HOST_CACHE',
    type: bool,
    description:
      'Local provider: machines of this host share <SOLSTICE_STATE_DIR>/host-cache: the runner verified by sha256 instead of a download per job, its V8 code cache, and a bare repository per job repository that checkout and pipeline planning fetch only what is new into',
    default: true,
  }),
  hostId: setting({
    env: 'SOLSTICE_HOST_ID',
    type: str,
    description: 'Name of this VM host; every machine it makes is tagged with it',
    default: derived('the hostname', () => os.hostname()),
  }),
  hostLabels: optional({
    env: 'SOLSTICE_HOST_LABELS',
    type: list,
    description: 'Labels this host runs machines for, comma-separated (jobs of other labels go elsewhere)',
    unset: "every label of the host's providers",
  }),
  hostMaxMachines: setting({
    env: 'SOLSTICE_HOST_MAX_MACHINES',
    type: positiveInt,
    description: 'Most machines this host runs at once; further jobs wait in the queue',
    default: 4,
  }),
  labelLimits: setting({
    env: 'SOLSTICE_LABEL_LIMITS',
    type: labelLimits,
    description:
      'Most machines of a label at once over all hosts, e.g. debian-12=2,local=1 (give every worker the same); none: no per-label limit',
    default: {},
  }),
  pools: setting({
    env: 'SOLSTICE_POOLS',
    type: pools,
    description:
      "Warm pools: booted machines this host keeps waiting per label, <label>=<min_idle>[/<max_idle>[/<max_idle_age>]], e.g. debian-12=1/2/30m or local=1 (wins over the image map's pool:; docs/qemu.md)",
    default: {},
  }),
  actionsRunsOn: setting({
    env: 'SOLSTICE_ACTIONS_RUNS_ON',
    type: runsOnMap,
    description:
      'Actions workflows: the runs-on labels each machine label provides, e.g. debian-12=ubuntu-latest+ubuntu-24.04+linux; a job runs on the first label that provides all of its runs-on (docs/actions.md)',
    default: {
      local: ['ubuntu-latest', 'ubuntu-24.04', 'ubuntu-22.04', 'linux', 'x64', 'self-hosted', 'docker'],
    },
  }),
  hostTtlMs: setting({
    env: 'SOLSTICE_HOST_TTL',
    type: duration,
    description:
      'A host whose worker has not been heard of for this long is dead: it gets no new machines and its leases are reclaimed (it heartbeats every third of it)',
    default: 60_000,
  }),
  provider: setting({
    env: 'SOLSTICE_PROVIDER',
    type: oneOf('local', 'qemu'),
    description:
      'What machines jobs run on: `local` (a process on this host; trusted code only) or `qemu` (a fresh VM per job, images from SOLSTICE_IMAGE_MAP)',
    default: 'local',
  }),
  imageMap: optional({
    env: 'SOLSTICE_IMAGE_MAP',
    type: str,
    description: 'YAML file mapping runs-on labels to VM images and sizes (see docs/qemu.md)',
    unset: 'unset (needed with SOLSTICE_PROVIDER=qemu)',
  }),
  qemuAccel: setting({
    env: 'SOLSTICE_QEMU_ACCEL',
    type: oneOf('kvm', 'tcg', 'auto'),
    description:
      'QEMU accelerator for images that name none: kvm, tcg (emulation, slow) or auto (kvm when /dev/kvm is usable and the CPU has vmx/svm)',
    default: 'auto',
  }),
  sweepIntervalMs: setting({
    env: 'SOLSTICE_SWEEP_INTERVAL',
    type: duration,
    description:
      'How often a worker removes machines (VMs, processes, work folders) of this host whose job no longer runs; also at start',
    default: 5 * 60_000,
  }),
  retainLogs: optional({
    env: 'SOLSTICE_RETAIN_LOGS',
    type: retention,
    description:
      "How long finished jobs' logs are kept: an age (30d, 12h) or last:N (the newest N jobs per repository and branch); `solstice gc` and the worker's scheduled sweep remove the rest",
    unset: 'unset: kept forever',
  }),
  retainArtifacts: optional({
    env: 'SOLSTICE_RETAIN_ARTIFACTS',
    type: retention,
    description: "How long finished jobs' artifacts are kept (an age or last:N, as SOLSTICE_RETAIN_LOGS)",
    unset: 'unset: kept forever',
  }),
  retainPipelines: optional({
    env: 'SOLSTICE_RETAIN_PIPELINES',
    type: retention,
    description:
      'How long finished pipelines are kept, with their jobs, logs and artifacts (an age or last:N, as SOLSTICE_RETAIN_LOGS)',
    unset: 'unset: kept forever',
  }),
  gcIntervalMs: setting({
    env: 'SOLSTICE_GC_INTERVAL',
    type: duration,
    description:
      'How often the scheduled sweep applies the SOLSTICE_RETAIN_* settings (a Temporal Schedule the worker sets up when any is set)',
    default: 60 * 60_000,
  }),
  temporalRetentionMs: optional({
    env: 'SOLSTICE_TEMPORAL_RETENTION',
    type: longDuration,
    description:
      "How long Temporal keeps closed workflows' histories in TEMPORAL_NAMESPACE (e.g. 7d); the worker sets it at start",
    unset: "unset: the namespace's own",
  }),
  jobTimeoutMs: setting({
    env: 'SOLSTICE_JOB_TIMEOUT',
    type: duration,
    description: 'Default time a job may run once its runner started (e.g. 30m, 2h)',
    default: 60 * 60_000,
  }),
  bootTimeoutMs: setting({
    env: 'SOLSTICE_BOOT_TIMEOUT',
    type: duration,
    description: 'Time a machine may take from provisioning until its runner connects',
    default: 3 * 60_000,
  }),
  machineLivenessMs: setting({
    env: 'SOLSTICE_MACHINE_LIVENESS',
    type: duration,
    description:
      'A running job whose runner has not been heard from for this long has lost its machine: it is destroyed and the job retried on a fresh one (runners heartbeat every quarter of it, whatever the job prints)',
    default: 60_000,
  }),
  checkoutRetryForMs: setting({
    env: 'SOLSTICE_CHECKOUT_RETRY_FOR',
    type: duration,
    description:
      "How long a job's checkout retries a repository it cannot reach (the forge down, a network failure) before the job ends `error`",
    default: 5 * 60_000,
  }),
  otlpEndpoint: optional({
    env: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    type: url,
    description:
      'OTLP/gRPC endpoint for traces and metrics (e.g. http://127.0.0.1:4317, Jaeger or a collector); unset: no export',
    unset: 'unset',
  }),
  tracesExporter: optional({
    env: 'OTEL_TRACES_EXPORTER',
    type: str,
    description: 'With no OTLP endpoint, `console` prints spans to stdout (other values: no export)',
    unset: 'unset',
  }),
  serviceName: optional({
    env: 'OTEL_SERVICE_NAME',
    type: str,
    description: 'service.name of traces and metrics',
    unset: "unset: the command's own (solstice-worker, solstice-bridge, ...)",
  }),
  shutdownGraceMs: setting({
    env: 'SOLSTICE_SHUTDOWN_GRACE',
    type: duration,
    description:
      'On SIGTERM, how long a service waits for in-flight work (activities, log streams, requests) before it cuts it off',
    default: 30_000,
  }),
  metricsAddr: optional({
    env: 'SOLSTICE_METRICS_ADDR',
    type: hostPort,
    description: 'host:port of a Prometheus endpoint (GET /metrics) for this process; unset: none',
    unset: 'unset',
  }),
  runnerOtlpEndpoint: optional({
    env: 'SOLSTICE_RUNNER_OTLP_ENDPOINT',
    type: url,
    description:
      "OTLP/gRPC endpoint a job's runner sends its spans to, as the machine reaches it (qemu: this host's 127.0.0.1 endpoint, forwarded into the VM)",
    default: derived('OTEL_EXPORTER_OTLP_ENDPOINT', (c) => c.otlpEndpoint as string | undefined),
  }),
  amqpUrl: setting({
    env: 'AMQP_URL',
    type: amqpUrl,
    description:
      'RabbitMQ URL (job requests travel through it from webhooks and enqueue to the bridge); by default the local broker with its guest account; none: no broker (enqueue starts runs directly)',
    default: 'amqp://guest:guest@127.0.0.1:5672/%2f',
  }),
  amqpPrefix: optional({
    env: 'SOLSTICE_AMQP_PREFIX',
    type: amqpPrefix,
    description:
      "Prefix of this installation's exchanges and queues (<prefix>.jobs, <prefix>.jobs.v1, ...), so installations sharing a broker and vhost never see each other's requests; give every process of the installation the same",
    unset: 'solstice.<installation id> (the id `solstice doctor` shows, from the database)',
  }),
  amqpPrefetch: setting({
    env: 'AMQP_PREFETCH',
    type: int,
    description: 'Job requests the bridge works on at once (unacknowledged deliveries)',
    default: 32,
  }),
  webhookAddr: setting({
    env: 'SOLSTICE_WEBHOOK_ADDR',
    type: hostPort,
    description: 'Where the webhook ingress listens (host:port)',
    default: '127.0.0.1:8090',
  }),
  webhookBodyLimit: setting({
    env: 'SOLSTICE_WEBHOOK_BODY_LIMIT',
    type: int,
    description: 'Largest webhook body accepted, in bytes (larger: 413)',
    default: 5 * 1024 * 1024,
  }),
  forgejoWebhookSecret: optional({
    env: 'SOLSTICE_FORGEJO_WEBHOOK_SECRET',
    type: secret,
    description: 'Secret of Forgejo/Gitea webhooks (HMAC-SHA256); `file:<path>` reads it from a file',
    unset: 'unset: /webhooks/forgejo refuses every delivery',
  }),
  githubWebhookSecret: optional({
    env: 'SOLSTICE_GITHUB_WEBHOOK_SECRET',
    type: secret,
    description: 'Secret of GitHub webhooks (HMAC-SHA256); `file:<path>` reads it from a file',
    unset: 'unset: /webhooks/github refuses every delivery',
  }),
  webhookLocalRepos: setting({
    env: 'SOLSTICE_WEBHOOK_LOCAL_REPOS',
    type: bool,
    description:
      "Accept a webhook whose repository is a path on this host, and fetch it with git's file transport. Tests and local experiments only",
    default: false,
  }),
  webhookInsecure: setting({
    env: 'SOLSTICE_WEBHOOK_INSECURE',
    type: bool,
    description: 'Accept unsigned webhooks on endpoints without a secret. Local experiments only',
    default: false,
    flag: '--insecure-no-webhook-secret',
  }),
  webhookDedupeWindowMs: setting({
    env: 'SOLSTICE_WEBHOOK_DEDUPE_WINDOW',
    type: duration,
    description:
      'A forge event (repository, event, ref, head commit, pull request, action) delivered again within this time starts no new run (Replay sends a new delivery id)',
    default: 60 * 60_000,
  }),
  forgejoToken: optional({
    env: 'SOLSTICE_FORGEJO_TOKEN',
    type: secret,
    description:
      'Forgejo/Gitea API token for commit statuses (scope: repository write); `file:<path>` reads it from a file',
    unset: 'unset: no statuses on Forgejo/Gitea',
  }),
  forgeStatusDeadlineMs: setting({
    env: 'SOLSTICE_FORGE_STATUS_DEADLINE',
    type: duration,
    description:
      'How long a commit status is retried (with backoff) while the forge is unreachable, before it is given up',
    default: 6 * 60 * 60_000,
  }),
  forgejoApiUrl: optional({
    env: 'SOLSTICE_FORGEJO_API_URL',
    type: url,
    description: 'Forgejo/Gitea API base URL for commit statuses',
    unset: "<the repository's origin>/api/v1",
  }),
  githubAppId: optional({
    env: 'GITHUB_APP_ID',
    type: str,
    description: 'GitHub App id; with GITHUB_APP_PRIVATE_KEY, jobs report as check runs',
    unset: 'unset: no check runs on GitHub',
  }),
  githubAppPrivateKey: optional({
    env: 'GITHUB_APP_PRIVATE_KEY',
    type: secret,
    description: "The GitHub App's private key (PEM); `file:<path>` reads it from a file",
    unset: 'unset',
  }),
  githubApiUrl: setting({
    env: 'GITHUB_API_URL',
    type: url,
    description: 'GitHub REST API base URL (GitHub Enterprise: https://<host>/api/v3)',
    default: 'https://api.github.com',
  }),
  publicUrl: optional({
    env: 'SOLSTICE_PUBLIC_URL',
    type: url,
    description:
      'Base URL people open for a job (forge statuses and the Temporal Web UI link <url>/jobs/<job id>)',
    unset: 'unset: statuses carry no link',
  }),
  anonymousRead: setting({
    env: 'SOLSTICE_ANONYMOUS_READ',
    type: oneOf('public', 'none'),
    description:
      'Who reads without signing in: `public` the repositories a forge says are public, `none` nobody',
    default: 'public',
  }),
  trustProxy: setting({
    env: 'SOLSTICE_TRUST_PROXY',
    type: bool,
    description:
      'Believe X-Forwarded-Proto/-For from the reverse proxy in front of the web pages (session cookies get Secure behind https)',
    default: false,
  }),
  permissionCacheMs: setting({
    env: 'SOLSTICE_PERMISSION_CACHE',
    type: duration,
    description:
      "How long a forge's answer (repository visibility, a user's permission) is reused; a permission revoked on the forge takes effect within this time",
    default: 60_000,
  }),
  sessionTtlMs: setting({
    env: 'SOLSTICE_SESSION_TTL',
    type: duration,
    description: 'How long a web sign-in lasts before the user signs in through the forge again',
    default: 7 * 24 * 60 * 60_000,
  }),
  oauthForgejoUrl: optional({
    env: 'SOLSTICE_OAUTH_FORGEJO_URL',
    type: url,
    description:
      'Forgejo/Gitea whose users sign in to the web pages (its web address); repositories under it get their visibility and permissions from it',
    unset: 'unset: no sign-in through Forgejo/Gitea',
  }),
  oauthForgejoClientId: optional({
    env: 'SOLSTICE_OAUTH_FORGEJO_CLIENT_ID',
    type: str,
    description:
      'Client id of the OAuth2 application made on Forgejo/Gitea (redirect URI <public url>/login/forgejo/callback)',
    unset: 'unset',
  }),
  oauthForgejoClientSecret: optional({
    env: 'SOLSTICE_OAUTH_FORGEJO_CLIENT_SECRET',
    type: secret,
    description: "That application's client secret; `file:<path>` reads it from a file",
    unset: 'unset',
  }),
  oauthGithubUrl: setting({
    env: 'SOLSTICE_OAUTH_GITHUB_URL',
    type: url,
    description:
      'GitHub web address users sign in at (GitHub Enterprise: https://<host>); its API is GITHUB_API_URL',
    default: 'https://github.com',
  }),
  oauthGithubClientId: optional({
    env: 'SOLSTICE_OAUTH_GITHUB_CLIENT_ID',
    type: str,
    description: 'Client id of the GitHub OAuth app (callback URL <public url>/login/github/callback)',
    unset: 'unset: no sign-in through GitHub',
  }),
  oauthGithubClientSecret: optional({
    env: 'SOLSTICE_OAUTH_GITHUB_CLIENT_SECRET',
    type: secret,
    description: "That OAuth app's client secret; `file:<path>` reads it from a file",
    unset: 'unset',
  }),
  logLevel: setting({
    env: 'LOG_LEVEL',
    type: oneOf(...LOG_LEVELS),
    description: 'Least severe service log line written (JSON lines on stderr)',
    default: 'info',
  }),
  debug: setting({
    env: 'SOLSTICE_DEBUG',
    type: bool,
    description: 'Print stack traces of errors (as --verbose does)',
    default: false,
  }),
  noColor: setting({
    env: 'NO_COLOR',
    type: present,
    description: 'Set to anything to print without colors, even on a terminal',
    default: false,
  }),
  workflowLabels: optional({
    env: 'SOLSTICE_LABELS',
    type: list,
    description: '`solstice workflow`: runs-on labels the image map knows, comma-separated',
    unset: 'unset: the default runs-on label',
  }),
  apiUrl: optional({
    env: 'SOLSTICE_API_URL',
    type: url,
    description:
      'The CLI talks to this Solstice API (with SOLSTICE_TOKEN) instead of the database and Temporal',
    unset: 'unset: the CLI works directly (operators on the host)',
  }),
  apiToken: optional({
    env: 'SOLSTICE_TOKEN',
    type: secret,
    description: 'The API token the CLI sends to SOLSTICE_API_URL; `file:<path>` reads it from a file',
    unset: 'unset',
  }),
  toolsDir: setting({
    env: 'SOLSTICE_TOOLS_DIR',
    type: str,
    description: 'Folder whose bin/ holds the tools infra/bootstrap.sh builds (Temporal CLI, versitygw)',
    default: derived('<repository>/.tools', () => path.join(REPO_ROOT, '.tools')),
  }),
};

type Declared = typeof DECLARED;
export type SettingKey = keyof Declared;
type ValueOf<S> = S extends Setting<infer T> ? T : never;
/** The resolved settings; one field per table entry, of the type its schema reads. */
export type Config = { [K in SettingKey]: ValueOf<Declared[K]> };

/** A table entry with what is derived from its key. */
export type ResolvedSetting<T> = Setting<T> & { key: SettingKey; flag: `--${string}` };

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
function flagOf(key: string, s: Setting<unknown>): `--${string}` {
  if (s.flag) return s.flag;
  const suffix = s.type.keySuffix;
  const name = suffix && key.endsWith(suffix.key) ? key.slice(0, -suffix.key.length) + suffix.flag : key;
  return `--${kebab(name)}`;
}

export const SETTINGS = Object.fromEntries(
  Object.entries(DECLARED).map(([key, s]) => [key, { ...s, key, flag: flagOf(key, s as Setting<unknown>) }]),
) as unknown as { readonly [K in SettingKey]: ResolvedSetting<Config[K]> };

const KEYS = Object.keys(DECLARED) as SettingKey[];

function isDerived<T>(d: T | Derived<T>): d is Derived<T> {
  return typeof d === 'object' && d !== null && 'derived' in d && typeof d.derived === 'function';
}

/** The default as --help shows it: the value written as its type reads it, or what it means. */
export function defaultText(key: SettingKey): string {
  const s = SETTINGS[key] as ResolvedSetting<unknown>;
  if (isDerived(s.default)) return s.default.text;
  if (s.default === undefined) return s.unset ?? 'unset';
  const text = s.type.format(s.default);
  return text === '' ? 'none' : text;
}

/** A flag's --help line: what it means, the variable it falls back to and its default. */
export function helpText(key: SettingKey): string {
  const s = SETTINGS[key];
  return `${s.description} [env: ${s.env}; default: ${defaultText(key)}]`;
}

/** Raw text per setting, as given on the command line; the key is checked against the table. */
export type SettingOverrides = { [K in SettingKey]?: string | undefined };

function parseSetting(key: SettingKey, raw: string, source: string): unknown {
  const result = SETTINGS[key].type.schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(`${source} ${issue?.message ?? `has an invalid value "${raw}"`}`);
  }
  return result.data;
}

/**
 * Resolves settings: explicit value (a CLI flag) > environment > default.
 * Defaults are evaluated in table order so derived ones may depend on earlier ones.
 */
export function loadConfig(overrides: SettingOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const cfg: Record<string, unknown> = {};
  for (const key of KEYS) cfg[key] = resolve(key, overrides, env, cfg);
  return cfg as Config;
}

/** The raw text the operator gave (flag, else environment) and where from; an empty value counts as unset. */
function given(
  key: SettingKey,
  overrides: SettingOverrides,
  env: NodeJS.ProcessEnv,
): { raw: string; source: string } | undefined {
  const s = SETTINGS[key];
  const explicit = overrides[key];
  const raw = explicit ?? env[s.env];
  return raw === undefined || raw === ''
    ? undefined
    : { raw, source: explicit !== undefined ? s.flag : s.env };
}

function resolve(key: SettingKey, overrides: SettingOverrides, env: NodeJS.ProcessEnv, earlier: Earlier) {
  const s = SETTINGS[key] as ResolvedSetting<unknown>;
  const g = given(key, overrides, env);
  if (g) return parseSetting(key, g.raw, g.source);
  return isDerived(s.default) ? s.default.derived(earlier) : s.default;
}

/**
 * One setting from the environment, for code that needs just that one (the logger's level):
 * a bad value in an unrelated variable does not stop it. Derived defaults see the other settings.
 */
export function readSetting<K extends SettingKey>(key: K, env: NodeJS.ProcessEnv = process.env): Config[K] {
  const s = SETTINGS[key] as ResolvedSetting<unknown>;
  if (isDerived(s.default)) return loadConfig({}, env)[key];
  return resolve(key, {}, env, {}) as Config[K];
}

/** Whether the operator gave a setting (flag or environment) rather than leaving its default. */
export function settingGiven(
  key: SettingKey,
  overrides: SettingOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return given(key, overrides, env) !== undefined;
}

/** The URL a client should use for PostgreSQL: the configured one or the embedded server's. */
export function effectiveDatabaseUrl(cfg: Pick<Config, 'databaseUrl' | 'embeddedPgPort'>): string {
  return cfg.databaseUrl ?? embeddedDatabaseUrl(cfg.embeddedPgPort);
}

export function embeddedDatabaseUrl(port: number): string {
  return `postgresql://postgres:postgres@127.0.0.1:${port}/solstice`;
}
