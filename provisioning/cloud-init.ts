/**
 * Renders the NoCloud seed a machine boots with. The same user-data goes to a QEMU VM and to
 * the local provider, which applies write_files and runcmd itself (see local.ts).
 *
 * The job token lives only in /etc/solstice/job.yaml (mode 0600), never in the command line
 * or the environment of the job script.
 */
import YAML from 'yaml';
import { JOB_FILE_PATH, renderJobFile, type JobDefinition } from '../model/job-file';
import type { NoCloudSeed } from './contract';

export { JOB_FILE_PATH } from '../model/job-file';
export const BOOTSTRAP_PATH = '/usr/local/lib/solstice/bootstrap.sh';
export const RUNNER_PATH = '/opt/solstice/runner.js';
/** Written next to the runner by the local provider only (runner-loader.ts). */
export const RUNNER_LOADER_PATH = '/opt/solstice/runner-loader.js';
export const WORKDIR_PATH = '/var/lib/solstice/work';

export interface RunnerContext {
  machineId: string;
  jobId: string;
  token: string;
  runnerUrl: string;
  contactAddr: string;
  /** PEM CA the runner verifies the log service with (TLS); undefined: plaintext. */
  tlsCa?: string;
  repoUrl: string;
  commitSha: string;
  hostId: string;
  /** Values of the secrets the job named (job file `secrets`; never in history or on a command line). */
  secrets?: Record<string, string>;
  /** The job's steps, env, timeout and artifact paths; without steps the runner runs .solstice/job.sh. */
  definition?: JobDefinition;
  /** W3C traceparent of the span that provisioned the machine; the runner's span continues it. */
  traceparent?: string;
  /** OTLP/gRPC endpoint the runner exports its spans to. */
  otlpEndpoint?: string;
  /** How often the runner heartbeats while the job runs. */
  heartbeatIntervalMs?: number;
  /** How the machine came to be, the job log's first line (pools: warm or cold). */
  machineNote?: string;
}

/** What a warm-pool machine boots with: no job, no job token, no secrets (docs/qemu.md). */
export interface PoolRunnerContext {
  machineId: string;
  label: string;
  /** Grants WaitForAssignment for this machine and nothing else. */
  poolToken: string;
  runnerUrl: string;
  contactAddr: string;
  tlsCa?: string;
  hostId: string;
}

/** The pool file (/etc/solstice/pool.yaml, 0600): what a pool machine's runner waits with. */
export const POOL_FILE_PATH = '/etc/solstice/pool.yaml';

/**
 * All paths in the script are prefixed with $SOLSTICE_ROOT, which is empty in a VM and the
 * machine's folder for the local provider: one script for both.
 */
function bootstrapScript(env: Record<string, string>, what: string, pool = false): string {
  const envLines = Object.entries(env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n');
  return `#!/bin/sh
# Solstice CI machine bootstrap: fetch the runner and hand over to it.
set -eu
root="\${SOLSTICE_ROOT:-}"
${envLines}
${pool ? `export SOLSTICE_POOL_FILE="$root${POOL_FILE_PATH}"\n` : ''}export SOLSTICE_JOB_FILE="$root${JOB_FILE_PATH}"
export SOLSTICE_WORKDIR="$root${WORKDIR_PATH}"
mkdir -p "$(dirname "$root${RUNNER_PATH}")" "$SOLSTICE_WORKDIR"
# The local provider writes the runner it verified by hash from its host cache, and the loader
# that compiles it with the host's code cache (local.ts).
if [ -n "\${SOLSTICE_RUNNER_SHA256:-}" ] && [ -s "$root${RUNNER_PATH}" ]; then
  echo "[solstice-bootstrap] runner from the host cache, sha256 $SOLSTICE_RUNNER_SHA256"
  if [ -s "$root${RUNNER_LOADER_PATH}" ]; then
    echo "[solstice-bootstrap] starting runner ${what}"
    exec node "$root${RUNNER_LOADER_PATH}" "$root${RUNNER_PATH}"
  fi
else
  echo "[solstice-bootstrap] fetching runner from $SOLSTICE_RUNNER_URL"
  curl -fsS --retry 10 --retry-connrefused --retry-delay 1 --max-time 120 -o "$root${RUNNER_PATH}" "$SOLSTICE_RUNNER_URL"
fi
echo "[solstice-bootstrap] starting runner ${what}"
exec node "$root${RUNNER_PATH}"
`;
}

/** The job file's text for `ctx` (the seed's /etc/solstice/job.yaml, or a pool assignment). */
export function jobFileText(ctx: RunnerContext): string {
  // The definition's secret names are not written: the values, by name, are.
  const { secrets: _names, ...definition } = ctx.definition ?? {};
  return renderJobFile({
    jobId: ctx.jobId,
    token: ctx.token,
    contactAddr: ctx.contactAddr,
    tlsCa: ctx.tlsCa,
    repoUrl: ctx.repoUrl,
    commitSha: ctx.commitSha,
    runnerUrl: ctx.runnerUrl,
    workdir: WORKDIR_PATH,
    traceparent: ctx.traceparent,
    otlpEndpoint: ctx.otlpEndpoint,
    heartbeatIntervalMs: ctx.heartbeatIntervalMs,
    ...definition,
    secrets: ctx.secrets,
    machineNote: ctx.machineNote,
  });
}

export function renderSeed(ctx: RunnerContext): NoCloudSeed {
  const env = {
    SOLSTICE_RUNNER_URL: ctx.runnerUrl,
    ORCH_CONTACT_ADDR: ctx.contactAddr,
    SOLSTICE_JOB_ID: ctx.jobId,
    SOLSTICE_REPO_URL: ctx.repoUrl,
    SOLSTICE_COMMIT_SHA: ctx.commitSha,
    SOLSTICE_MACHINE_ID: ctx.machineId,
  };
  return seedWith(
    ctx.machineId,
    ctx.hostId,
    { path: JOB_FILE_PATH, content: jobFileText(ctx) },
    bootstrapScript(env, 'for job $SOLSTICE_JOB_ID'),
  );
}

/**
 * A pool machine's seed: the pool file instead of a job file. Its runner waits for an assignment
 * (runner/pool-wait.ts) and only then writes the job file and runs the job.
 */
export function renderPoolSeed(ctx: PoolRunnerContext): NoCloudSeed {
  const poolFile = YAML.stringify({
    machine_id: ctx.machineId,
    label: ctx.label,
    pool_token: ctx.poolToken,
    contact_addr: ctx.contactAddr,
    ...(ctx.tlsCa ? { tls_ca: ctx.tlsCa } : {}),
  });
  const env = {
    SOLSTICE_RUNNER_URL: ctx.runnerUrl,
    ORCH_CONTACT_ADDR: ctx.contactAddr,
    SOLSTICE_MACHINE_ID: ctx.machineId,
  };
  const script = bootstrapScript(env, 'to wait for a job (pool machine $SOLSTICE_MACHINE_ID)', true);
  return seedWith(ctx.machineId, ctx.hostId, { path: POOL_FILE_PATH, content: poolFile }, script);
}

function seedWith(
  machineId: string,
  hostId: string,
  file: { path: string; content: string },
  bootstrap: string,
): NoCloudSeed {
  const userData = {
    write_files: [
      { path: file.path, permissions: '0600', owner: 'root:root', content: file.content },
      { path: BOOTSTRAP_PATH, permissions: '0755', owner: 'root:root', content: bootstrap },
    ],
    // A string entry runs through `sh -c`, in a VM and in the local provider alike.
    runcmd: [`"\${SOLSTICE_ROOT:-}${BOOTSTRAP_PATH}"`],
  };
  const metaData = { 'instance-id': machineId, 'local-hostname': machineId };
  return {
    userData: `#cloud-config\n# Solstice CI ${machineId} on ${hostId}\n${YAML.stringify(userData, { blockQuote: 'literal' })}`,
    metaData: YAML.stringify(metaData),
  };
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
