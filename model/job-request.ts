/**
 * JobRequest v1: the AMQP message that asks for a CI run (see DESIGN.md, "Contracts").
 * Body: JSON, content type application/json, header `schema_version: jobrequest.v1`.
 *
 * Also the deterministic identities derived from a request: the workflow id (so that a
 * redelivered message or a repeated webhook never starts a second run) and the job id
 * (a UUID v5 of the workflow id, because job rows are keyed by job id).
 */
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { normalizeRepoUrl, repoIdSegment } from './repo-url';

export const JOB_REQUEST_V1 = 'jobrequest.v1';

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/; // SHA-1, or SHA-256 object format

export const jobRequestV1Schema = z.object({
  schema_version: z.literal(JOB_REQUEST_V1),
  request_id: z.uuid(),
  source: z.enum(['forgejo', 'github', 'manual']),
  repo_url: z.string().min(1).max(2048),
  commit_sha: z.string().regex(SHA, 'must be a full lowercase hex commit sha'),
  ref: z.string().min(1).max(1024),
  workflow_path: z.string().min(1).max(1024).optional(),
  workflow_job_id: z.string().min(1).max(256).optional(),
  runs_on: z.string().min(1).max(256).optional(),
  /** With workflow_path: run that Actions workflow as workflow_dispatch with these inputs. */
  inputs: z.record(z.string().max(256), z.string().max(65536)).optional(),
  delivery_id: z.string().min(1).max(256).optional(),
  // What the forge event was; with these the run's identity is the event, not the delivery.
  // For source manual (`solstice enqueue --event`), the event to run as.
  event: z.enum(['push', 'pull_request']).optional(),
  action: z.string().min(1).max(64).optional(),
  pr_number: z.number().int().positive().optional(),
  /** A push: the commit the ref pointed at before it (for Actions `paths` filters). */
  before_sha: z.string().regex(SHA, 'must be a full lowercase hex commit sha').optional(),
  submitted_at: z.iso.datetime({ offset: true }),
});
// Unknown fields are dropped rather than refused, so producers may add optional fields
// within v1 without breaking older consumers.

export type JobRequestV1 = z.infer<typeof jobRequestV1Schema>;

export type ParseResult = { ok: true; request: JobRequestV1 } | { ok: false; reason: string };

/** Validates a message body (and its schema_version header when present). Never throws. */
export function parseJobRequest(body: Buffer | string, headers: Record<string, unknown> = {}): ParseResult {
  const header = headers.schema_version;
  if (header !== undefined && String(header) !== JOB_REQUEST_V1)
    return { ok: false, reason: `unsupported schema_version header "${String(header)}"` };
  let json: unknown;
  try {
    json = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `body is not JSON: ${(err as Error).message}` };
  }
  const r = jobRequestV1Schema.safeParse(json);
  if (!r.success) return { ok: false, reason: z.prettifyError(r.error).replace(/\n\s*/g, ' ') };
  return { ok: true, request: r.data };
}

export interface NewJobRequest {
  source: JobRequestV1['source'];
  repoUrl: string;
  commitSha: string;
  ref: string;
  deliveryId?: string;
  event?: 'push' | 'pull_request';
  action?: string;
  prNumber?: number;
  beforeSha?: string;
  runsOn?: string;
  workflowPath?: string;
  workflowJobId?: string;
  inputs?: Record<string, string>;
}

/** Builds a valid JobRequest v1 (throws if the fields are not). */
export function newJobRequest(r: NewJobRequest, now: Date = new Date()): JobRequestV1 {
  return jobRequestV1Schema.parse({
    schema_version: JOB_REQUEST_V1,
    request_id: randomUUID(),
    source: r.source,
    repo_url: r.repoUrl,
    commit_sha: r.commitSha.toLowerCase(),
    ref: r.ref,
    workflow_path: r.workflowPath,
    workflow_job_id: r.workflowJobId,
    runs_on: r.runsOn,
    inputs: r.inputs,
    delivery_id: r.deliveryId,
    event: r.event,
    action: r.action,
    pr_number: r.prNumber,
    before_sha: r.beforeSha?.toLowerCase(),
    submitted_at: now.toISOString(),
  });
}

export function encodeJobRequest(r: JobRequestV1): Buffer {
  return Buffer.from(JSON.stringify(r));
}

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 20);
}

export type WorkflowKind = 'job' | 'pipeline';

/**
 * `<kind>/<repo>/<sha12>/<id>`: readable in the Temporal Web UI (which repository and commit),
 * then the unique id. Every workflow id is spelled here, so a run started by the CLI and one
 * started by the bridge name the same repository the same way.
 */
export function readableWorkflowId(
  kind: WorkflowKind,
  req: { repoUrl: string; commitSha: string },
  id: string,
): string {
  return `${kind}/${repoIdSegment(req.repoUrl)}/${req.commitSha.slice(0, 12)}/${id}`;
}

/** How long a forge event is remembered for dedupe when no setting says (webhookDedupeWindowMs). */
export const DEFAULT_DEDUPE_WINDOW_MS = 60 * 60_000;

/**
 * What a forge event is, whatever delivery carried it: Gitea's Replay and GitHub's redeliver
 * send the same event under a new delivery id. Undefined for requests without event fields.
 */
export function eventKeyOf(r: JobRequestV1): string | undefined {
  // `solstice enqueue --event push` asks for a run of its own each time: its delivery id is
  // its identity, not the event it pretends to be.
  if (!r.event || r.source === 'manual') return undefined;
  return shortHash(
    [
      r.source,
      normalizeRepoUrl(r.repo_url),
      r.event,
      r.ref,
      r.commit_sha,
      r.pr_number ?? '',
      r.action ?? '',
    ].join('\n'),
  );
}

/**
 * Deterministic workflow id.
 *
 * A forge event (push, pull_request): `<kind>/<repo>/<sha12>/<source>-<event key>-w<window>`,
 * where the window is the request's submission time divided by the dedupe window: one id for
 * every delivery of one event within a window (`windowsBack` names an earlier window, which the
 * bridge checks too, so deliveries on either side of a window's edge are still one run).
 *
 * Otherwise, with a delivery id (one per forge event, kept by the forge on redelivery):
 * `<kind>/<repo>/<sha12>/<source>-<delivery>`. Without one, the event itself: repository,
 * commit, ref and workflow job, hashed. Readable in the Temporal Web UI.
 */
export function workflowIdFor(
  r: JobRequestV1,
  kind: WorkflowKind = 'job',
  dedupeWindowMs: number = DEFAULT_DEDUPE_WINDOW_MS,
  windowsBack = 0,
): string {
  const id = (suffix: string): string =>
    readableWorkflowId(kind, { repoUrl: r.repo_url, commitSha: r.commit_sha }, suffix);
  const eventKey = eventKeyOf(r);
  if (eventKey) {
    const window = Math.floor(Date.parse(r.submitted_at) / Math.max(1, dedupeWindowMs)) - windowsBack;
    return id(`${r.source}-${eventKey}-w${window}`);
  }
  if (r.delivery_id) {
    const d = r.delivery_id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 128);
    // The readable part may be lossy; the hash keeps distinct deliveries distinct.
    const exact = d === r.delivery_id ? '' : `-${shortHash(r.delivery_id).slice(0, 8)}`;
    return id(`${r.source}-${d}${exact}`);
  }
  const key = [
    normalizeRepoUrl(r.repo_url),
    r.commit_sha,
    r.ref,
    r.workflow_path ?? '',
    r.workflow_job_id ?? '',
  ];
  return id(`event-${shortHash(key.join('\n'))}`);
}

/** Namespace for job ids (UUID v5), fixed forever: changing it would change every derived id. */
const JOB_ID_NAMESPACE = 'c8a4b0d2-6f0e-4a57-9d8e-3b1f5c2a7e91';

/** RFC 9562 UUID version 5 (SHA-1, name-based). */
export function uuidV5(name: string, namespace: string = JOB_ID_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The job id a workflow id stands for. */
export function jobIdFor(workflowId: string): string {
  return uuidV5(workflowId);
}
