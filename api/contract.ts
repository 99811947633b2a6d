/**
 * The API's contract: every route's parameters, query and body as zod schemas. Requests are
 * validated against these where the route reads them, and /api/openapi.json is generated from
 * the same schemas, so the document cannot drift from what the server accepts.
 */
import { z } from 'zod';

export const PAGE_SIZE_MAX = 100;
export const PAGE_MAX = 10_000;
/** Log lines one windowed read returns at most. */
export const LOG_WINDOW_MAX = 5000;
/** Longest request target (path and query) accepted; longer is 414. */
export const URL_MAX = 4096;
/** Body limits: a workflow file to validate may be large, every other body is small. */
export const BODY_LIMIT = 16 * 1024;
export const WORKFLOW_BODY_LIMIT = 512 * 1024;

const JOB_STATES = ['queued', 'provisioning', 'running', 'success', 'failure', 'error', 'cancelled'] as const;
const PIPELINE_STATES = ['running', 'success', 'failure', 'error', 'cancelled'] as const;

/** A whole id: URLs never take prefixes, so ids cannot be found by guessing a few characters. */
const wholeId = z
  .string()
  .regex(
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    'must be a whole id (a lower-case UUID)',
  );

export const idParams = z.object({ id: wholeId }).strict();
export const artifactParams = z.object({ id: wholeId, '*': z.string().min(1).max(1024) }).strict();

const page = {
  page: z.coerce.number().int().min(1).max(PAGE_MAX).default(1).describe('1 is the newest'),
  per_page: z.coerce.number().int().min(1).max(PAGE_SIZE_MAX).default(20),
};

const runFilter = {
  repo: z.string().min(1).max(200).optional().describe('part of the repository URL or path'),
  branch: z.string().min(1).max(200).optional().describe('branch name or full ref'),
};

export const pipelinesQuery = z
  .object({ ...page, ...runFilter, state: z.enum(PIPELINE_STATES).optional() })
  .strict();
export const jobsQuery = z.object({ ...page, ...runFilter, state: z.enum(JOB_STATES).optional() }).strict();
export const pageQuery = z.object(page).strict();
export const noQuery = z.object({}).strict();

/** A place in a job's log: the sequence number of the last line the client has. */
const afterSeq = z.coerce
  .number()
  .int()
  .min(0)
  .max(2 ** 31)
  .default(0);

export const logQuery = z
  .object({
    after: afterSeq.describe('lines after this sequence number'),
    limit: z.coerce.number().int().min(1).max(LOG_WINDOW_MAX).default(1000),
  })
  .strict();
export const eventsQuery = z.object({ after: afterSeq }).strict();

export const rerunBody = z
  .object({ failed: z.boolean().default(false).describe('rerun only failed jobs and what needs them') })
  .strict();
export const cancelBody = z.object({}).strict();

export const enqueueBody = z
  .object({
    repo: z.string().min(1).max(1024).describe('repository URL (or a path on the Solstice host)'),
    commit: z.string().regex(/^[0-9a-f]{40}$/, 'must be a full 40-character commit sha'),
    ref: z.string().min(1).max(256).optional().describe('default: the commit'),
    event: z.enum(['push', 'pull_request', 'manual']).default('manual'),
    label: z.string().min(1).max(100).optional(),
    workflow: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe('an Actions workflow to run as workflow_dispatch'),
    inputs: z.record(z.string().max(100), z.string().max(4096)).optional(),
  })
  .strict();

export const validateBody = z
  .object({
    content: z.string().max(WORKFLOW_BODY_LIMIT).describe('the text of a .solstice/workflow.kdl'),
    labels: z
      .array(z.string().min(1).max(100))
      .max(100)
      .optional()
      .describe('runs-on labels the image map knows'),
  })
  .strict();

export const errorBody = z.object({
  error: z.object({
    status: z.number().int(),
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
  }),
});

export type Method = 'GET' | 'POST';
export type ApiScope = 'read' | 'write' | 'none';

/** A route as the server registers it and the OpenAPI document describes it. */
export interface RouteSpec {
  method: Method;
  /** Below /api, fastify syntax (`/v1/jobs/:id`). */
  path: string;
  summary: string;
  /** What the route needs on the thing's repository; `none`: any authenticated principal. */
  scope: ApiScope;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodObject;
  /** Content types of a success, for the document (default application/json). */
  produces?: string;
  success?: number;
}
