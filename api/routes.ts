/**
 * The API's routes, described once: the server registers these and /api/openapi.json is built
 * from them and their schemas (api/contract.ts).
 */
import { z } from 'zod';
import { solsticeVersion } from '../platform/version';
import * as c from './contract';

export const ROUTES = {
  openapi: { method: 'GET', path: '/openapi.json', summary: 'This document', scope: 'none' },
  listPipelines: {
    method: 'GET',
    path: '/v1/pipelines',
    summary: 'Pipelines, newest first, filtered by repository, branch and state',
    scope: 'read',
    query: c.pipelinesQuery,
  },
  enqueue: {
    method: 'POST',
    path: '/v1/pipelines',
    summary: 'Start a pipeline for a commit (as `solstice enqueue`)',
    scope: 'write',
    body: c.enqueueBody,
    success: 201,
  },
  getPipeline: {
    method: 'GET',
    path: '/v1/pipelines/:id',
    summary: 'A pipeline with its jobs and their steps (as `solstice status --json`)',
    scope: 'read',
    params: c.idParams,
  },
  cancelPipeline: {
    method: 'POST',
    path: '/v1/pipelines/:id/cancel',
    summary: 'Cancel every running job of a pipeline',
    scope: 'write',
    params: c.idParams,
    body: c.cancelBody,
    success: 202,
  },
  rerunPipeline: {
    method: 'POST',
    path: '/v1/pipelines/:id/rerun',
    summary: 'Run a pipeline again at the same commit; failed: only what failed',
    scope: 'write',
    params: c.idParams,
    body: c.rerunBody,
    success: 201,
  },
  listJobs: {
    method: 'GET',
    path: '/v1/jobs',
    summary: 'Jobs, newest first, filtered by repository, branch and state',
    scope: 'read',
    query: c.jobsQuery,
  },
  getJob: {
    method: 'GET',
    path: '/v1/jobs/:id',
    summary: 'A job: state, timing, steps per attempt, its pipeline',
    scope: 'read',
    params: c.idParams,
  },
  cancelJob: {
    method: 'POST',
    path: '/v1/jobs/:id/cancel',
    summary: 'Cancel one job (its dependents are skipped)',
    scope: 'write',
    params: c.idParams,
    body: c.cancelBody,
    success: 202,
  },
  jobLog: {
    method: 'GET',
    path: '/v1/jobs/:id/log',
    summary: 'A window of the log: up to `limit` lines after line `after`',
    scope: 'read',
    params: c.idParams,
    query: c.logQuery,
  },
  jobLogEvents: {
    method: 'GET',
    path: '/v1/jobs/:id/log/events',
    summary: 'The log followed as server-sent events (`lines`, then `end`); resumes at Last-Event-ID',
    scope: 'read',
    params: c.idParams,
    query: c.eventsQuery,
    produces: 'text/event-stream',
  },
  listArtifacts: {
    method: 'GET',
    path: '/v1/jobs/:id/artifacts',
    summary: "A job's artifacts: path, size, SHA-256",
    scope: 'read',
    params: c.idParams,
    query: c.pageQuery,
  },
  getArtifact: {
    method: 'GET',
    path: '/v1/jobs/:id/artifacts/*',
    summary: 'Download one artifact',
    scope: 'read',
    params: c.artifactParams,
    produces: 'application/octet-stream',
  },
  validateWorkflow: {
    method: 'POST',
    path: '/v1/workflow/validate',
    summary: 'Check a .solstice/workflow.kdl (as `solstice workflow validate --json`)',
    scope: 'none',
    body: c.validateBody,
  },
} as const satisfies Record<string, c.RouteSpec>;

export type RouteName = keyof typeof ROUTES;

const json = (schema: z.ZodType) => {
  const s = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete s.$schema;
  return s;
};

let built: object | undefined;

/** The OpenAPI 3.1 document, built once from ROUTES. */
export function openApiDocument(): object {
  if (built) return built;
  const paths: Record<string, Record<string, unknown>> = {};
  const errorResponse = {
    description: 'An error',
    content: { 'application/json': { schema: json(c.errorBody) } },
  };
  for (const [name, raw] of Object.entries(ROUTES)) {
    const spec = raw as c.RouteSpec;
    const url = `/api${spec.path.replace(/:([a-z]+)/g, '{$1}').replace(/\*$/, '{path}')}`;
    const parameters: object[] = [];
    for (const key of Object.keys(spec.params?.shape ?? {}))
      parameters.push({
        name: key === '*' ? 'path' : key,
        in: 'path',
        required: true,
        schema: json(spec.params!.shape[key] as z.ZodType),
      });
    for (const [key, schema] of Object.entries(spec.query?.shape ?? {}))
      parameters.push({ name: key, in: 'query', required: false, schema: json(schema as z.ZodType) });
    const produces = spec.produces ?? 'application/json';
    paths[url] ??= {};
    paths[url][spec.method.toLowerCase()] = {
      operationId: name,
      summary: spec.summary,
      description:
        spec.scope === 'none'
          ? name === 'openapi'
            ? 'Needs no token.'
            : 'Needs any valid token.'
          : `Needs scope ${spec.scope} on the repository. A repository the caller may not read answers 404, like a missing id.`,
      ...(name === 'openapi' ? { security: [] } : {}),
      parameters,
      ...(spec.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: json(spec.body) } } } }
        : {}),
      responses: {
        [String(spec.success ?? 200)]: { description: 'Success', content: { [produces]: {} } },
        '4XX': errorResponse,
        '5XX': errorResponse,
      },
    };
  }
  built = {
    openapi: '3.1.0',
    info: { title: 'Solstice CI API', version: solsticeVersion(), description: 'See docs/api.md.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
  return built;
}
