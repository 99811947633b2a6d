/**
 * Clipanion options generated from the settings table, so every flag's --help names its
 * environment fallback and default, and commands resolve settings the same way.
 */
import { Command, Option } from 'clipanion';
import { loadConfig, SETTINGS, type Config, type SettingKey } from '../platform/config';

export function settingOption(key: SettingKey) {
  const s = SETTINGS[key];
  return Option.String(s.flag, {
    description: `${s.description} [env: ${s.env}; default: ${s.defaultText}]`,
  });
}

/** Options every command that talks to PostgreSQL and Temporal understands. */
export abstract class ConnectedCommand extends Command {
  databaseUrl = settingOption('databaseUrl');
  embeddedPgPort = settingOption('embeddedPgPort');
  dbPoolMaxSize = settingOption('dbPoolMaxSize');
  dbPoolTimeoutMs = settingOption('dbPoolTimeoutMs');
  temporalAddress = settingOption('temporalAddress');
  temporalNamespace = settingOption('temporalNamespace');
  taskQueue = settingOption('taskQueue');
  stateDir = settingOption('stateDir');
  verbose = Option.Boolean('--verbose', false, {
    description: 'Print stack traces of errors [env: SOLSTICE_DEBUG]',
  });

  /** Flags given on the command line; settings the command does not expose stay env/default. */
  protected config(extra: Partial<Record<SettingKey, string | undefined>> = {}): Config {
    const own: Partial<Record<SettingKey, string | undefined>> = {};
    for (const key of Object.keys(SETTINGS) as SettingKey[]) {
      const value = (this as unknown as Record<string, unknown>)[key];
      if (typeof value === 'string') own[key] = value;
    }
    return loadConfig({ ...own, ...extra });
  }
}

/** Adds where blobs (logs, artifacts) are stored: for commands that read or write them. */
export abstract class BlobCommand extends ConnectedCommand {
  blobFsRoot = settingOption('blobFsRoot');
  s3Bucket = settingOption('s3Bucket');
  s3Endpoint = settingOption('s3Endpoint');
  awsRegion = settingOption('awsRegion');
  s3ForcePathStyle = settingOption('s3ForcePathStyle');
  s3Prefix = settingOption('s3Prefix');
  s3ConnectTimeout = settingOption('s3ConnectTimeoutMs');
  s3RequestTimeout = settingOption('s3RequestTimeoutMs');
  s3MaxAttempts = settingOption('s3MaxAttempts');

  protected override config(extra: Partial<Record<SettingKey, string | undefined>> = {}): Config {
    return super.config({
      s3ConnectTimeoutMs: this.s3ConnectTimeout,
      s3RequestTimeoutMs: this.s3RequestTimeout,
      ...extra,
    });
  }
}

/** Adds the settings a service process (worker, log service, runner server, job page) needs. */
export abstract class ServiceCommand extends BlobCommand {
  grpcAddr = settingOption('grpcAddr');
  contactAddr = settingOption('contactAddr');
  runnerServeAddr = settingOption('runnerServeAddr');
  runnerUrl = settingOption('runnerUrl');
  artifactMaxFileSize = settingOption('artifactMaxFileBytes');
  artifactMaxJobSize = settingOption('artifactMaxJobBytes');
  jobPageAddr = settingOption('jobPageAddr');
  publicUrl = settingOption('publicUrl');
  workspaceRoot = settingOption('workspaceRoot');
  hostId = settingOption('hostId');
  hostLabels = settingOption('hostLabels');
  hostMaxMachines = settingOption('hostMaxMachines');
  labelLimits = settingOption('labelLimits');
  hostTtl = settingOption('hostTtlMs');
  provider = settingOption('provider');
  imageMap = settingOption('imageMap');
  qemuAccel = settingOption('qemuAccel');
  sweepIntervalMs = settingOption('sweepIntervalMs');
  jobTimeout = settingOption('jobTimeoutMs');
  bootTimeout = settingOption('bootTimeoutMs');
  migrate = Option.Boolean(SETTINGS.migrateOnBoot.flag, {
    description: `${SETTINGS.migrateOnBoot.description} [env: ${SETTINGS.migrateOnBoot.env}; default: ${SETTINGS.migrateOnBoot.defaultText}]`,
  });
  otlpEndpoint = settingOption('otlpEndpoint');
  shutdownGrace = settingOption('shutdownGraceMs');
  metricsAddr = settingOption('metricsAddr');
  runnerOtlpEndpoint = settingOption('runnerOtlpEndpoint');

  protected override config(extra: Partial<Record<SettingKey, string | undefined>> = {}): Config {
    return super.config({
      jobTimeoutMs: this.jobTimeout,
      bootTimeoutMs: this.bootTimeout,
      hostTtlMs: this.hostTtl,
      shutdownGraceMs: this.shutdownGrace,
      artifactMaxFileBytes: this.artifactMaxFileSize,
      artifactMaxJobBytes: this.artifactMaxJobSize,
      migrateOnBoot: this.migrate === undefined ? undefined : String(this.migrate),
      ...extra,
    });
  }
}
