/**
 * CLI flags generated from the settings table. A command lists the settings it takes by key
 * (`static settings`); each becomes a flag named, described and defaulted by the table, and
 * `config()` reads exactly those flags back, so a key the table does not have is a compile error
 * and there are no field names to keep in step with keys.
 */
import { Command, Option } from 'clipanion';
import {
  helpText,
  loadConfig,
  SETTINGS,
  settingGiven,
  type Config,
  type SettingKey,
  type SettingOverrides,
} from '../platform/config';

/** The clipanion option of one setting: a boolean flag for boolean settings, else a value. */
export function settingOption(key: SettingKey): string | boolean | undefined {
  const s = SETTINGS[key];
  const description = helpText(key);
  return typeof s.default === 'boolean'
    ? Option.Boolean(s.flag, { description })
    : Option.String(s.flag, { description });
}

/** Marks a command prototype that holds its settings' options already. */
const SETTINGS_DEFINED = Symbol.for('solstice.settingsDefined') as unknown as string;

/** A command whose flags include settings from the table. */
export abstract class SettingsCommand extends Command {
  /** Keys of the settings this command takes as flags; a subclass extends its parent's (withSettings). */
  static settings: readonly SettingKey[] = [];

  /** This command's settings and `keys`: how a subclass adds flags to its parent's. */
  static withSettings(...keys: SettingKey[]): readonly SettingKey[] {
    return [...this.settings, ...keys];
  }

  declare verbose: boolean;

  constructor() {
    super();
    // Clipanion finds options with `for...in` (and writes the parsed value back onto the
    // instance), which visits own properties before inherited ones. The settings go on the
    // command's prototype, so --help lists the command's own options first and the settings,
    // the same for every command, after them.
    const proto = Object.getPrototypeOf(this) as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(proto, SETTINGS_DEFINED)) return;
    const define = (key: string, option: unknown) =>
      Object.defineProperty(proto, key, {
        value: option,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    define(SETTINGS_DEFINED, undefined);
    define(
      'verbose',
      Option.Boolean('--verbose', false, {
        description: `Print stack traces of errors [env: ${SETTINGS.debug.env}]`,
      }),
    );
    for (const key of new Set((this.constructor as typeof SettingsCommand).settings)) {
      define(key, settingOption(key));
    }
  }

  /** The listed settings given on the command line, as raw text. */
  protected givenFlags(): SettingOverrides {
    const self = this as unknown as Record<SettingKey, string | boolean | undefined>;
    const out: SettingOverrides = {};
    for (const key of (this.constructor as typeof SettingsCommand).settings) {
      const v = self[key];
      if (v !== undefined) out[key] = String(v);
    }
    return out;
  }

  /** The raw text of one flag, when given on the command line. */
  protected flag(key: SettingKey): string | undefined {
    return this.givenFlags()[key];
  }

  /** Whether a setting was given, by flag or environment, rather than left to its default. */
  protected given(key: SettingKey): boolean {
    return settingGiven(key, this.givenFlags());
  }

  /** Flags given on the command line; settings the command does not list stay env/default. */
  protected config(): Config {
    return loadConfig(this.givenFlags());
  }
}

/** Where Temporal is and how to reach it: every command that talks to it. */
export const TEMPORAL: readonly SettingKey[] = [
  'temporalAddress',
  'temporalNamespace',
  'temporalTls',
  'temporalTlsCaPath',
  'temporalTlsCertPath',
  'temporalTlsKeyPath',
  'temporalTlsServerName',
];
/** Settings of every command that talks to PostgreSQL and Temporal. */
const CONNECTED: readonly SettingKey[] = [
  'databaseUrl',
  'embeddedPgPort',
  'dbPoolMaxSize',
  'dbPoolTimeoutMs',
  ...TEMPORAL,
  'taskQueue',
  'stateDir',
  'apiUrl',
  'apiToken',
];
/** Where blobs (logs, artifacts) are stored: for commands that read or write them. */
const BLOBS: readonly SettingKey[] = [
  'blobFsRoot',
  's3Bucket',
  's3Endpoint',
  'awsRegion',
  's3ForcePathStyle',
  's3Prefix',
  's3ConnectTimeoutMs',
  's3RequestTimeoutMs',
  's3MaxAttempts',
];
/** What a service process (worker, log service, runner server, job page) needs besides. */
const SERVICE: readonly SettingKey[] = [
  'grpcAddr',
  'contactAddr',
  'runnerServeAddr',
  'runnerUrl',
  'artifactMaxFileBytes',
  'artifactMaxJobBytes',
  'jobPageAddr',
  'publicUrl',
  'anonymousRead',
  'workspaceRoot',
  'hostId',
  'hostLabels',
  'hostMaxMachines',
  'labelLimits',
  'actionsRunsOn',
  'hostTtlMs',
  'provider',
  'imageMap',
  'qemuAccel',
  'sweepIntervalMs',
  'retainLogs',
  'retainArtifacts',
  'retainPipelines',
  'gcIntervalMs',
  'temporalRetentionMs',
  'temporalMaxConcurrentActivities',
  'temporalMaxConcurrentWorkflowTasks',
  'temporalStickyCacheSize',
  'jobTimeoutMs',
  'bootTimeoutMs',
  'machineLivenessMs',
  'migrateOnBoot',
  'otlpEndpoint',
  'shutdownGraceMs',
  'metricsAddr',
  'runnerOtlpEndpoint',
  'temporalUiPort',
  'grpcKeepaliveTimeMs',
  'grpcKeepaliveTimeoutMs',
  'grpcMaxMessageBytes',
  'grpcTlsCert',
  'grpcTlsKey',
  'grpcTlsCa',
  'secretsFile',
  'tracesExporter',
  'serviceName',
  'forgejoToken',
  'forgejoApiUrl',
  'githubAppId',
  'githubAppPrivateKey',
  'githubApiUrl',
];

export abstract class ConnectedCommand extends SettingsCommand {
  static override settings: readonly SettingKey[] = CONNECTED;
}

export abstract class BlobCommand extends ConnectedCommand {
  static override settings = ConnectedCommand.withSettings(...BLOBS);
}

/** `solstice gc`: the blob store and the retention settings. */
export abstract class GcCommandBase extends BlobCommand {
  static override settings = BlobCommand.withSettings('retainLogs', 'retainArtifacts', 'retainPipelines');
}

export abstract class ServiceCommand extends BlobCommand {
  static override settings = BlobCommand.withSettings(...SERVICE);
}
