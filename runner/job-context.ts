/**
 * What the runner needs to know about its job. Cloud-init passes it as environment variables
 * and/or as a YAML job file (SOLSTICE_JOB_FILE, default /etc/solstice/job.yaml); a variable
 * wins over the file's key, so a developer can override one value by hand.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JOB_FILE_PATH, jobFileKey, parseJobFile, type JobFile, type JobStep } from '../model/job-file';
import { parseDuration } from '../platform/units';
import { ConfigError } from '../platform/errors';
import { GIT_CACHE_ENV } from '../model/host-cache';

export interface JobContext {
  jobId: string;
  /**
   * The host's shared bare repositories (local provider only, SOLSTICE_GIT_CACHE): checkout
   * fetches into them and borrows their objects; undefined: a plain fetch into the workdir.
   */
  gitCacheDir?: string;
  /** Per-job secret for the log service. Never log it and never pass it to the job script. */
  token: string;
  /** host:port of the orchestrator's log service. */
  contactAddr: string;
  /**
   * PEM CA certificate(s) to verify the log service's TLS certificate with (job file key
   * `tls_ca`); undefined: plaintext. The certificate must name the host of contactAddr.
   */
  tlsCa?: string;
  repoUrl: string;
  commitSha: string;
  /** Where the repository is checked out and the script runs. */
  workdir: string;
  /** How long calls to the log service are retried while it is unreachable. */
  retryForMs: number;
  /**
   * The job's steps, from the job file's `steps` list. Undefined when the file has none: the
   * runner then runs `.solstice/job.sh` from the checkout as a one-step job.
   */
  steps?: JobStep[];
  /** Extra environment for every step (the job file's `env` mapping). */
  env: Record<string, string>;
  /**
   * The job's secrets (the job file's `secrets` mapping): given to every step as environment
   * variables like `env`, and masked in the log.
   */
  secrets: Record<string, string>;
  /** The job's timeout as the orchestrator enforces it (informational; 0 when not given). */
  timeoutMs: number;
  /** How often to send Heartbeat while the job runs (job file `heartbeat_interval_ms`). */
  heartbeatIntervalMs: number;
  /** Paths or globs relative to the checkout, uploaded after the steps (the job file's `artifacts`). */
  artifacts: string[];
  /** Set for a job of an Actions workflow: its contexts and env as JSON (runner/actions.ts). */
  actions?: string;
  /** Outputs of the jobs an Actions job needs, by planned job name. */
  needsOutputs?: Record<string, Record<string, string>>;
  /** W3C traceparent of the span that provisioned this machine; the runner's spans continue it. */
  traceparent?: string;
  /** OTLP/gRPC endpoint for the runner's spans; unset: spans are not exported. */
  otlpEndpoint?: string;
  /**
   * The header git sends to fetch the repository (the forge's token, for a private
   * repository). From StartJob, never from the job file or the environment: it stays in the
   * runner's memory, is given to git alone and is masked in the log.
   */
  checkoutAuthHeader?: string;
  /** How the machine came to be (warm from a pool or cold), written as the log's first line. */
  machineNote?: string;
  /** How long the checkout retries a repository it cannot reach; from StartJob, else 5 min. */
  checkoutRetryForMs?: number;
}

type Field =
  'jobId' | 'token' | 'contactAddr' | 'repoUrl' | 'commitSha' | 'workdir' | 'traceparent' | 'otlpEndpoint';

/** Each field's environment variable (which wins over the job file's key). */
const ENV_VARS: Record<Field, string> = {
  jobId: 'SOLSTICE_JOB_ID',
  token: 'SOLSTICE_JOB_TOKEN',
  contactAddr: 'ORCH_CONTACT_ADDR',
  repoUrl: 'SOLSTICE_REPO_URL',
  commitSha: 'SOLSTICE_COMMIT_SHA',
  workdir: 'SOLSTICE_WORKDIR',
  traceparent: 'SOLSTICE_TRACEPARENT',
  otlpEndpoint: 'SOLSTICE_OTLP_ENDPOINT',
};

/** Tuning knob, mostly for tests: how long to retry an unreachable log service. */
export const RETRY_FOR_ENV = 'SOLSTICE_RUNNER_RETRY_FOR';
const DEFAULT_RETRY_FOR_MS = 2 * 60_000;
/** A quarter of the default liveness window (SOLSTICE_MACHINE_LIVENESS, 60 s). */
const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;

export function loadJobContext(env: NodeJS.ProcessEnv = process.env): JobContext {
  const file = readJobFile(env);
  const value = (field: Field): string | undefined => {
    const fromEnv = env[ENV_VARS[field]]?.trim();
    if (fromEnv) return fromEnv;
    const fromFile = file.content[field]?.trim();
    return fromFile || undefined;
  };

  const required: Field[] = ['jobId', 'token', 'contactAddr', 'repoUrl', 'commitSha'];
  const missing = required.filter((f) => value(f) === undefined);
  if (missing.length > 0) {
    const list = missing.map((f) => `${ENV_VARS[f]} (job file key ${jobFileKey(f)})`).join(', ');
    throw new ConfigError(
      `missing job settings: ${list}`,
      file.path
        ? `set them in the environment or in ${file.path}`
        : `set them in the environment or in a job file (SOLSTICE_JOB_FILE, default ${JOB_FILE_PATH}, not found)`,
    );
  }

  const ctx: JobContext = {
    jobId: value('jobId') as string,
    token: value('token') as string,
    contactAddr: value('contactAddr') as string,
    repoUrl: value('repoUrl') as string,
    commitSha: (value('commitSha') as string).toLowerCase(),
    workdir: path.resolve(value('workdir') ?? path.join(os.homedir(), 'work')),
    ...(file.content.tlsCa?.trim() ? { tlsCa: file.content.tlsCa } : {}),
    retryForMs: env[RETRY_FOR_ENV] ? parseDuration(env[RETRY_FOR_ENV], RETRY_FOR_ENV) : DEFAULT_RETRY_FOR_MS,
    steps: file.content.steps,
    env: file.content.env ?? {},
    secrets: file.content.secrets ?? {},
    timeoutMs: file.content.timeoutMs ?? 0,
    heartbeatIntervalMs: file.content.heartbeatIntervalMs || DEFAULT_HEARTBEAT_INTERVAL_MS,
    artifacts: file.content.artifacts ?? [],
    ...(file.content.actions ? { actions: file.content.actions } : {}),
    ...(file.content.needsOutputs ? { needsOutputs: file.content.needsOutputs } : {}),
    ...(file.content.machineNote ? { machineNote: file.content.machineNote } : {}),
    traceparent: value('traceparent'),
    otlpEndpoint: value('otlpEndpoint'),
    ...(env[GIT_CACHE_ENV]?.trim() ? { gitCacheDir: path.resolve(env[GIT_CACHE_ENV].trim()) } : {}),
  };
  validate(ctx);
  return ctx;
}

function validate(ctx: JobContext): void {
  if (!/^[^\s:]+:\d{1,5}$/.test(ctx.contactAddr) && !/^\[[0-9a-f:.]+\]:\d{1,5}$/i.test(ctx.contactAddr)) {
    throw new ConfigError(`ORCH_CONTACT_ADDR must be host:port, got "${ctx.contactAddr}"`);
  }
  // Both end up as git arguments: a leading "-" would be read as an option.
  if (!/^[0-9a-f]{7,64}$/.test(ctx.commitSha)) {
    throw new ConfigError(`SOLSTICE_COMMIT_SHA must be a hexadecimal commit id, got "${ctx.commitSha}"`);
  }
  if (ctx.repoUrl.startsWith('-')) {
    throw new ConfigError(`SOLSTICE_REPO_URL must be a repository URL or path, got "${ctx.repoUrl}"`);
  }
  for (const pattern of ctx.artifacts) {
    if (pattern.trim() === '' || path.isAbsolute(pattern) || pattern.split(/[\\/]/).includes('..')) {
      throw new ConfigError(`artifact path "${pattern}" must be a relative path or glob inside the checkout`);
    }
  }
  // A malformed traceparent is ignored (a new trace starts); a bad endpoint is a setup mistake.
  if (ctx.traceparent && !/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(ctx.traceparent)) {
    ctx.traceparent = undefined;
  }
  if (ctx.otlpEndpoint && !/^https?:\/\/[^\s]+$/.test(ctx.otlpEndpoint)) {
    throw new ConfigError(`SOLSTICE_OTLP_ENDPOINT must be an http(s) URL, got "${ctx.otlpEndpoint}"`);
  }
  for (const step of ctx.steps ?? []) {
    const wd = step.workingDirectory;
    if (wd !== undefined && (path.isAbsolute(wd) || path.normalize(wd).split(path.sep).includes('..'))) {
      throw new ConfigError(
        `step "${step.name}": working directory "${wd}" must be a relative path inside the checkout`,
      );
    }
  }
}

/** The job file that was read (if any) and what it holds; its shape is model/job-file.ts's. */
interface ReadJobFile {
  path?: string;
  content: JobFile;
}

function readJobFile(env: NodeJS.ProcessEnv): ReadJobFile {
  const explicit = env.SOLSTICE_JOB_FILE?.trim();
  const file = explicit || JOB_FILE_PATH;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    // The default file is optional (everything may come from the environment); a named one is not.
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return { content: {} };
    throw new ConfigError(`cannot read job file ${file}: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  return { path: file, content: parseJobFile(text, file) };
}
