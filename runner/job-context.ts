/**
 * What the runner needs to know about its job. Cloud-init passes it as environment variables
 * and/or as a YAML job file (SOLSTICE_JOB_FILE, default /etc/solstice/job.yaml); a variable
 * wins over the file's key, so a developer can override one value by hand.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../platform/units';
import { ConfigError } from '../platform/errors';

export const DEFAULT_JOB_FILE = '/etc/solstice/job.yaml';

export interface JobContext {
  jobId: string;
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
  /** Paths or globs relative to the checkout, uploaded after the steps (the job file's `artifacts`). */
  artifacts: string[];
  /** W3C traceparent of the span that provisioned this machine; the runner's spans continue it. */
  traceparent?: string;
  /** OTLP/gRPC endpoint for the runner's spans; unset: spans are not exported. */
  otlpEndpoint?: string;
}

/** One step of the job, as the job file carries it. */
export interface JobStep {
  name: string;
  /** Shell script, run with `/bin/sh -e`. */
  run: string;
  /** Relative to the checkout root; must stay inside it. */
  workingDirectory?: string;
  continueOnError: boolean;
}

type Field =
  'jobId' | 'token' | 'contactAddr' | 'repoUrl' | 'commitSha' | 'workdir' | 'traceparent' | 'otlpEndpoint';

/** Each field's environment variable and job-file key. */
const SOURCES: Record<Field, { env: string; key: string }> = {
  jobId: { env: 'SOLSTICE_JOB_ID', key: 'job_id' },
  token: { env: 'SOLSTICE_JOB_TOKEN', key: 'token' },
  contactAddr: { env: 'ORCH_CONTACT_ADDR', key: 'contact_addr' },
  repoUrl: { env: 'SOLSTICE_REPO_URL', key: 'repo_url' },
  commitSha: { env: 'SOLSTICE_COMMIT_SHA', key: 'commit_sha' },
  workdir: { env: 'SOLSTICE_WORKDIR', key: 'workdir' },
  traceparent: { env: 'SOLSTICE_TRACEPARENT', key: 'traceparent' },
  otlpEndpoint: { env: 'SOLSTICE_OTLP_ENDPOINT', key: 'otlp_endpoint' },
};

/** Tuning knob, mostly for tests: how long to retry an unreachable log service. */
export const RETRY_FOR_ENV = 'SOLSTICE_RUNNER_RETRY_FOR';
const DEFAULT_RETRY_FOR_MS = 2 * 60_000;

export function loadJobContext(env: NodeJS.ProcessEnv = process.env): JobContext {
  const file = readJobFile(env);
  const value = (field: Field): string | undefined => {
    const fromEnv = env[SOURCES[field].env]?.trim();
    if (fromEnv) return fromEnv;
    const fromFile = file.values[SOURCES[field].key]?.trim();
    return fromFile || undefined;
  };

  const required: Field[] = ['jobId', 'token', 'contactAddr', 'repoUrl', 'commitSha'];
  const missing = required.filter((f) => value(f) === undefined);
  if (missing.length > 0) {
    const list = missing.map((f) => `${SOURCES[f].env} (job file key ${SOURCES[f].key})`).join(', ');
    throw new ConfigError(
      `missing job settings: ${list}`,
      file.path
        ? `set them in the environment or in ${file.path}`
        : `set them in the environment or in a job file (SOLSTICE_JOB_FILE, default ${DEFAULT_JOB_FILE}, not found)`,
    );
  }

  const ctx: JobContext = {
    jobId: value('jobId') as string,
    token: value('token') as string,
    contactAddr: value('contactAddr') as string,
    repoUrl: value('repoUrl') as string,
    commitSha: (value('commitSha') as string).toLowerCase(),
    workdir: path.resolve(value('workdir') ?? path.join(os.homedir(), 'work')),
    ...(file.values.tls_ca?.trim() ? { tlsCa: file.values.tls_ca } : {}),
    retryForMs: env[RETRY_FOR_ENV] ? parseDuration(env[RETRY_FOR_ENV], RETRY_FOR_ENV) : DEFAULT_RETRY_FOR_MS,
    steps: file.steps,
    env: file.env,
    secrets: file.secrets,
    timeoutMs: Number(file.values.timeout_ms) || 0,
    artifacts: file.artifacts,
    traceparent: value('traceparent'),
    otlpEndpoint: value('otlpEndpoint'),
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

interface JobFile {
  /** The file that was read, if any. */
  path?: string;
  values: Partial<Record<string, string>>;
  steps?: JobStep[];
  env: Record<string, string>;
  secrets: Record<string, string>;
  artifacts: string[];
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The `steps` list: each a mapping with string `name` and `run` (failsafe YAML: all scalars are strings). */
function readSteps(file: string, v: unknown): JobStep[] {
  if (!Array.isArray(v)) throw new ConfigError(`job file ${file}: steps must be a list`);
  return v.map((item: unknown, i): JobStep => {
    const where = `job file ${file}: step ${i + 1}`;
    if (!isMapping(item)) throw new ConfigError(`${where} must be a mapping`);
    const { name, run, working_directory: wd, continue_on_error: coe } = item;
    if (typeof run !== 'string') throw new ConfigError(`${where} has no run script`);
    if (wd !== undefined && typeof wd !== 'string')
      throw new ConfigError(`${where}: working_directory must be a string`);
    return {
      name: typeof name === 'string' && name !== '' ? name : `step ${i + 1}`,
      run,
      ...(wd ? { workingDirectory: wd } : {}),
      continueOnError: coe === 'true',
    };
  });
}

function stringMapping(file: string, key: string, v: unknown): Record<string, string> {
  if (v === undefined) return {};
  if (!isMapping(v)) throw new ConfigError(`job file ${file}: ${key} must be a mapping`);
  // fromEntries defines own properties, so a variable named __proto__ stays a variable.
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function readJobFile(env: NodeJS.ProcessEnv): JobFile {
  const explicit = env.SOLSTICE_JOB_FILE?.trim();
  const file = explicit || DEFAULT_JOB_FILE;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    // The default file is optional (everything may come from the environment); a named one is not.
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT')
      return { values: {}, env: {}, secrets: {}, artifacts: [] };
    throw new ConfigError(`cannot read job file ${file}: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  let doc: unknown;
  try {
    // failsafe: every scalar stays a string, so a commit id of only digits is not read as a number.
    doc = parseYaml(text, { schema: 'failsafe' });
  } catch (err) {
    throw new ConfigError(`job file ${file} is not valid YAML: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  if (doc === null || doc === undefined || doc === '')
    return { path: file, values: {}, env: {}, secrets: {}, artifacts: [] };
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`job file ${file} must be a YAML mapping of keys to values`);
  }
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc)) {
    if (typeof v === 'string') values[k] = v;
  }
  const { steps, env: envMap, secrets, artifacts } = doc as Record<string, unknown>;
  if (artifacts !== undefined && (!Array.isArray(artifacts) || artifacts.some((a) => typeof a !== 'string')))
    throw new ConfigError(`job file ${file}: artifacts must be a list of paths`);
  return {
    path: file,
    values,
    env: stringMapping(file, 'env', envMap),
    secrets: stringMapping(file, 'secrets', secrets),
    artifacts: (artifacts as string[] | undefined) ?? [],
    ...(steps !== undefined ? { steps: readSteps(file, steps) } : {}),
  };
}
