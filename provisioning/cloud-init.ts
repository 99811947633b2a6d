/**
 * Renders the NoCloud seed a machine boots with. The same user-data goes to a QEMU VM and to
 * the local provider, which applies write_files and runcmd itself (see local.ts).
 *
 * The job token lives only in /etc/solstice/job.yaml (mode 0600), never in the command line
 * or the environment of the job script.
 */
import YAML from 'yaml';
import type { JobDefinitionSpec } from '../model/domain';
import type { NoCloudSeed } from './contract';

export const JOB_FILE_PATH = '/etc/solstice/job.yaml';
export const BOOTSTRAP_PATH = '/usr/local/lib/solstice/bootstrap.sh';
export const RUNNER_PATH = '/opt/solstice/runner.js';
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
  definition?: JobDefinitionSpec;
  /** W3C traceparent of the span that provisioned the machine; the runner's span continues it. */
  traceparent?: string;
  /** OTLP/gRPC endpoint the runner exports its spans to. */
  otlpEndpoint?: string;
}

/**
 * All paths in the script are prefixed with $SOLSTICE_ROOT, which is empty in a VM and the
 * machine's folder for the local provider: one script for both.
 */
function bootstrapScript(ctx: RunnerContext): string {
  const env = {
    SOLSTICE_RUNNER_URL: ctx.runnerUrl,
    ORCH_CONTACT_ADDR: ctx.contactAddr,
    SOLSTICE_JOB_ID: ctx.jobId,
    SOLSTICE_REPO_URL: ctx.repoUrl,
    SOLSTICE_COMMIT_SHA: ctx.commitSha,
    SOLSTICE_MACHINE_ID: ctx.machineId,
  };
  const envLines = Object.entries(env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n');
  return `#!/bin/sh
# Solstice CI machine bootstrap: fetch the runner and hand over to it.
set -eu
root="\${SOLSTICE_ROOT:-}"
${envLines}
export SOLSTICE_JOB_FILE="$root${JOB_FILE_PATH}"
export SOLSTICE_WORKDIR="$root${WORKDIR_PATH}"
mkdir -p "$(dirname "$root${RUNNER_PATH}")" "$SOLSTICE_WORKDIR"
echo "[solstice-bootstrap] fetching runner from $SOLSTICE_RUNNER_URL"
curl -fsS --retry 10 --retry-connrefused --retry-delay 1 --max-time 120 -o "$root${RUNNER_PATH}" "$SOLSTICE_RUNNER_URL"
echo "[solstice-bootstrap] starting runner for job $SOLSTICE_JOB_ID"
exec node "$root${RUNNER_PATH}"
`;
}

export function renderSeed(ctx: RunnerContext): NoCloudSeed {
  const jobFile = YAML.stringify({
    job_id: ctx.jobId,
    token: ctx.token,
    contact_addr: ctx.contactAddr,
    ...(ctx.tlsCa ? { tls_ca: ctx.tlsCa } : {}),
    repo_url: ctx.repoUrl,
    commit_sha: ctx.commitSha,
    runner_url: ctx.runnerUrl,
    workdir: WORKDIR_PATH,
    ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}),
    ...(ctx.otlpEndpoint ? { otlp_endpoint: ctx.otlpEndpoint } : {}),
    ...jobFileDefinition(ctx.definition),
    ...(ctx.secrets && Object.keys(ctx.secrets).length > 0 ? { secrets: ctx.secrets } : {}),
  });
  const userData = {
    write_files: [
      { path: JOB_FILE_PATH, permissions: '0600', owner: 'root:root', content: jobFile },
      { path: BOOTSTRAP_PATH, permissions: '0755', owner: 'root:root', content: bootstrapScript(ctx) },
    ],
    // A string entry runs through `sh -c`, in a VM and in the local provider alike.
    runcmd: [`"\${SOLSTICE_ROOT:-}${BOOTSTRAP_PATH}"`],
  };
  const metaData = { 'instance-id': ctx.machineId, 'local-hostname': ctx.machineId };
  return {
    userData: `#cloud-config\n# Solstice CI ${ctx.machineId} on ${ctx.hostId}\n${YAML.stringify(userData, { blockQuote: 'literal' })}`,
    metaData: YAML.stringify(metaData),
  };
}

/** The job file's `steps`, `env`, `artifacts` and `timeout_ms` keys (snake_case, as runner/job-context.ts reads them). */
function jobFileDefinition(def: JobDefinitionSpec | undefined): Record<string, unknown> {
  if (!def) return {};
  return {
    ...(def.timeoutMs ? { timeout_ms: String(def.timeoutMs) } : {}),
    ...(def.env && Object.keys(def.env).length > 0 ? { env: def.env } : {}),
    ...(def.artifacts && def.artifacts.length > 0 ? { artifacts: def.artifacts } : {}),
    ...(def.steps
      ? {
          steps: def.steps.map((s) => ({
            name: s.name,
            run: s.run,
            ...(s.workingDirectory ? { working_directory: s.workingDirectory } : {}),
            continue_on_error: s.continueOnError,
          })),
        }
      : {}),
  };
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
