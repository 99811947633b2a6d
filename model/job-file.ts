/**
 * The job's definition and the machine's job file (/etc/solstice/job.yaml, mode 0600): one
 * schema for the writer (provisioning/cloud-init.ts) and the reader (the runner, in the VM).
 *
 * `JobStep` and `JobDefinition` are the one shape a step and a job's definition have from the
 * workflow file's planner to the runner; a new field is added here and nowhere else.
 *
 * On the wire the file keeps its snake_case keys and is read with YAML's failsafe schema (every
 * scalar a string), so a commit id of only digits stays a string; `renderJobFile` and
 * `parseJobFile` are the one mapping between the two spellings.
 *
 * Bundled into the runner (Node 18, no node_modules): imports only zod/mini, yaml and platform/errors.
 */
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
// zod/mini, not zod: it adds some 50 KiB to the runner bundle where classic zod adds some 750.
import * as z from 'zod/mini';
import { ConfigError } from '../platform/errors';

/** Where the machine's job file is (under $SOLSTICE_ROOT for the local provider). */
export const JOB_FILE_PATH = '/etc/solstice/job.yaml';

/**
 * What a step from an Actions workflow (docs/actions.md) adds: the runner evaluates its `${{ }}`
 * expressions, its `if`, and the file commands ($GITHUB_ENV, $GITHUB_OUTPUT, ...).
 */
export const actionsStepSchema = z.object({
  id: z.optional(z.string()),
  /** Raw condition; absent: success(). */
  if: z.optional(z.string()),
  /** An expression for continue-on-error (a plain true/false is the step's continueOnError). */
  continueOnError: z.optional(z.string()),
  shell: z.string(),
  /** In file order: a later one may use an earlier one's value. */
  env: z.array(z.tuple([z.string(), z.string()])),
  timeoutMs: z.optional(z.number()),
  /** Written by the planner (actions/checkout): its script has no expressions to evaluate. */
  builtIn: z.optional(z.boolean()),
});
export type ActionsStep = z.infer<typeof actionsStepSchema>;

/** One step of a job, the same from the workflow file to the runner. */
export const jobStepSchema = z.object({
  name: z.string(),
  /** Shell script, run with `/bin/sh -e`. */
  run: z.string(),
  /** Relative to the checkout root; must stay inside it. */
  workingDirectory: z.optional(z.string()),
  /** A failing step is reported but does not fail the job. */
  continueOnError: z.boolean(),
  /** Set for steps of an Actions workflow. */
  actions: z.optional(actionsStepSchema),
});
export type JobStep = z.infer<typeof jobStepSchema>;

/** What a job runs, besides its identity: planned from the workflow file, carried to the machine. */
export const jobDefinitionSchema = z.object({
  /** Absent: the runner runs `.solstice/job.sh` from the checkout as a one-step job. */
  steps: z.optional(z.array(jobStepSchema)),
  /** Extra environment for every step. */
  env: z.optional(z.record(z.string(), z.string())),
  /** Names of secrets; their values are looked up when the machine is made, never in history. */
  secrets: z.optional(z.array(z.string())),
  timeoutMs: z.optional(z.number()),
  /** Paths or globs relative to the checkout, uploaded after the steps. */
  artifacts: z.optional(z.array(z.string())),
  /**
   * Set for a job of an Actions workflow: its expression contexts, env and outputs as JSON
   * (workflow-file/actions/plan.ts `ActionsJobContext`), read by the runner.
   */
  actions: z.optional(z.string()),
  /** Outputs of the jobs an Actions job needs, by their planned name (`ci/build`). */
  needsOutputs: z.optional(z.record(z.string(), z.record(z.string(), z.string()))),
});
export type JobDefinition = z.infer<typeof jobDefinitionSchema>;

/** The job file's content: the job's identity, where to reach the controller, and its definition. */
export const jobFileSchema = z.extend(z.omit(jobDefinitionSchema, { secrets: true }), {
  jobId: z.optional(z.string()),
  /** Per-job secret for the log service. */
  token: z.optional(z.string()),
  /** host:port of the orchestrator's log service. */
  contactAddr: z.optional(z.string()),
  /** PEM CA the runner verifies the log service with; absent: plaintext. */
  tlsCa: z.optional(z.string()),
  repoUrl: z.optional(z.string()),
  commitSha: z.optional(z.string()),
  runnerUrl: z.optional(z.string()),
  workdir: z.optional(z.string()),
  /** W3C traceparent of the span that provisioned the machine. */
  traceparent: z.optional(z.string()),
  otlpEndpoint: z.optional(z.string()),
  /** How often the runner tells the log service it is alive (a quarter of the liveness window). */
  heartbeatIntervalMs: z.optional(z.number()),
  /** The values of the secrets the job named, by name. */
  secrets: z.optional(z.record(z.string(), z.string())),
  /** How the machine came to be (warm from a pool, or booted cold); the runner's first log line. */
  machineNote: z.optional(z.string()),
});
export type JobFile = z.infer<typeof jobFileSchema>;

/** A field's key in the file (its name in snake_case), for messages that say what to write where. */
export function jobFileKey(field: keyof JobFile): string {
  return field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A job file that cannot be read as one; the message names the file and the field. */
export class JobFileError extends ConfigError {}

// The wire format. Messages are predicates: the reader prefixes them with where they apply.
const text = z.string({ error: 'must be a string' });
const milliseconds = z
  .string({ error: 'must be a string' })
  .check(z.regex(/^\d+$/, 'must be a whole number of milliseconds'));

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Not z.record: it drops a key named __proto__, which is a valid variable name.
const stringMap = z.custom<Record<string, string>>(
  (v) => isMapping(v) && Object.values(v).every((x) => typeof x === 'string'),
  { error: 'must be a mapping of names to strings' },
);

function unknownKeys(what: string) {
  return (iss: { code?: string; keys?: string[] }): string =>
    iss.code === 'unrecognized_keys'
      ? `has unknown key${iss.keys?.length === 1 ? '' : 's'} ${(iss.keys ?? []).map((k) => `"${k}"`).join(', ')}`
      : `must be ${what}`;
}

// A step's messages name their key: the reader puts them after "step N".
const wireStepSchema = z.strictObject(
  {
    name: z.optional(z.string({ error: 'name must be a string' })),
    run: z.string({
      error: (iss) => (iss.input === undefined ? 'has no run script' : 'run must be a string'),
    }),
    working_directory: z.optional(z.string({ error: 'working_directory must be a string' })),
    continue_on_error: z.optional(
      z.enum(['true', 'false'], { error: 'continue_on_error must be true or false' }),
    ),
    // JSON: the failsafe YAML schema keeps every scalar a string.
    actions: z.optional(z.string({ error: 'actions must be a JSON string' })),
  },
  { error: unknownKeys('a mapping') },
);

const wireJobFileSchema = z.strictObject(
  {
    job_id: z.optional(text),
    token: z.optional(text),
    contact_addr: z.optional(text),
    tls_ca: z.optional(text),
    repo_url: z.optional(text),
    commit_sha: z.optional(text),
    runner_url: z.optional(text),
    workdir: z.optional(text),
    traceparent: z.optional(text),
    otlp_endpoint: z.optional(text),
    timeout_ms: z.optional(milliseconds),
    heartbeat_interval_ms: z.optional(milliseconds),
    env: z.optional(stringMap),
    secrets: z.optional(stringMap),
    artifacts: z.optional(z.array(text, { error: 'must be a list of paths' })),
    steps: z.optional(z.array(wireStepSchema, { error: 'must be a list' })),
    actions: z.optional(text),
    // JSON, like actions: the failsafe schema has no nested typed values to check.
    needs_outputs: z.optional(text),
    machine_note: z.optional(text),
  },
  { error: unknownKeys('a YAML mapping of keys to values') },
);
type WireJobFile = z.input<typeof wireJobFileSchema>;

/** The job file's text, as the machine's seed carries it. Empty lists and mappings are left out. */
export function renderJobFile(f: JobFile): string {
  const wire: WireJobFile = {
    job_id: f.jobId,
    token: f.token,
    contact_addr: f.contactAddr,
    tls_ca: f.tlsCa || undefined,
    repo_url: f.repoUrl,
    commit_sha: f.commitSha,
    runner_url: f.runnerUrl,
    workdir: f.workdir,
    traceparent: f.traceparent || undefined,
    otlp_endpoint: f.otlpEndpoint || undefined,
    timeout_ms: f.timeoutMs ? String(f.timeoutMs) : undefined,
    heartbeat_interval_ms: f.heartbeatIntervalMs ? String(f.heartbeatIntervalMs) : undefined,
    env: nonEmpty(f.env),
    artifacts: f.artifacts?.length ? f.artifacts : undefined,
    steps: f.steps?.map((s) => ({
      name: s.name,
      run: s.run,
      working_directory: s.workingDirectory || undefined,
      continue_on_error: s.continueOnError ? 'true' : 'false',
      actions: s.actions ? JSON.stringify(s.actions) : undefined,
    })),
    actions: f.actions || undefined,
    needs_outputs:
      f.needsOutputs && Object.keys(f.needsOutputs).length > 0 ? JSON.stringify(f.needsOutputs) : undefined,
    secrets: nonEmpty(f.secrets),
    machine_note: f.machineNote || undefined,
  };
  // yaml leaves out keys whose value is undefined.
  return stringifyYaml(wire);
}

function nonEmpty(m: Record<string, string> | undefined): Record<string, string> | undefined {
  return m && Object.keys(m).length > 0 ? m : undefined;
}

/** Where an issue is, e.g. `steps[1].continue_on_error`. */
function pathText(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
}

function describeIssue(file: string, issue: z.core.$ZodIssue): string {
  const [top, index] = issue.path;
  if (top === undefined) return `job file ${file} ${issue.message}`;
  if (top === 'steps' && typeof index === 'number')
    return `job file ${file}: ${pathText(issue.path)}: step ${index + 1} ${issue.message}`;
  return `job file ${file}: ${pathText(issue.path)} ${issue.message}`;
}

function parseNeedsOutputs(json: string, file: string): Record<string, Record<string, string>> {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new JobFileError(`job file ${file}: needs_outputs is not JSON`);
  }
  const r = jobDefinitionSchema.shape.needsOutputs.safeParse(v);
  if (!r.success || r.data === undefined)
    throw new JobFileError(
      `job file ${file}: needs_outputs must map job names to mappings of names to strings`,
    );
  return r.data;
}

function parseStepActions(json: string, file: string, index: number): ActionsStep {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new JobFileError(
      `job file ${file}: steps[${index}].actions: step ${index + 1} actions is not JSON`,
    );
  }
  const r = actionsStepSchema.safeParse(v);
  if (!r.success)
    throw new JobFileError(
      `job file ${file}: steps[${index}].actions: step ${index + 1} ${r.error.issues.map((i) => `${pathText(i.path)} ${i.message}`).join('; ')}`,
    );
  return r.data;
}

/**
 * Reads a job file's text (`file` names it in errors). Throws JobFileError naming the field,
 * e.g. `job file /etc/solstice/job.yaml: steps[1].continue_on_error: step 2 continue_on_error must be
 * true or false`.
 */
export function parseJobFile(content: string, file: string): JobFile {
  let doc: unknown;
  try {
    // failsafe: every scalar stays a string, so a commit id of only digits is not read as a number.
    doc = parseYaml(content, { schema: 'failsafe' });
  } catch (err) {
    throw new JobFileError(`job file ${file} is not valid YAML: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  if (doc === null || doc === undefined || doc === '') return {};
  const r = wireJobFileSchema.safeParse(doc);
  if (!r.success) {
    throw new JobFileError(
      r.error.issues.map((i) => describeIssue(file, i)).join('\n'),
      'the controller writes this file when it makes the machine, with the keys of model/job-file.ts; a runner older or newer than its controller may not know them',
    );
  }
  const w = r.data;
  return {
    jobId: w.job_id,
    token: w.token,
    contactAddr: w.contact_addr,
    tlsCa: w.tls_ca,
    repoUrl: w.repo_url,
    commitSha: w.commit_sha,
    runnerUrl: w.runner_url,
    workdir: w.workdir,
    traceparent: w.traceparent,
    otlpEndpoint: w.otlp_endpoint,
    timeoutMs: w.timeout_ms === undefined ? undefined : Number(w.timeout_ms),
    heartbeatIntervalMs: w.heartbeat_interval_ms === undefined ? undefined : Number(w.heartbeat_interval_ms),
    env: w.env,
    secrets: w.secrets,
    artifacts: w.artifacts,
    steps: w.steps?.map((s, i): JobStep => ({
      name: s.name || `step ${i + 1}`,
      run: s.run,
      ...(s.working_directory ? { workingDirectory: s.working_directory } : {}),
      continueOnError: s.continue_on_error === 'true',
      ...(s.actions ? { actions: parseStepActions(s.actions, file, i) } : {}),
    })),
    ...(w.actions ? { actions: w.actions } : {}),
    ...(w.needs_outputs ? { needsOutputs: parseNeedsOutputs(w.needs_outputs, file) } : {}),
    ...(w.machine_note ? { machineNote: w.machine_note } : {}),
  };
}
