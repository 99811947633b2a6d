/**
 * The HTTP API under /api, for everything the CLI does (docs/api.md). It is mounted into the
 * job page's server, so one public URL serves pages and API. Every route authenticates the
 * caller (a bearer token, or a session the pages resolve), names the repository of what it
 * touches, and asks access/policy.ts; none decides access itself. Reads denied answer 404 as a
 * missing id does. Errors have one JSON shape: { error: { status, code, message, hint? } }.
 */
import { asDownload } from '../platform/download';
import { openEventStream } from '../platform/event-stream';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { authorize, type AccessSources, type Action } from '../access/policy';
import type { Principal } from '../access/principal';
import type { TokenStore } from '../access/tokens';
import { CapacityStore } from '../capacity/store';
import { FINAL_STATES } from '../model/domain';
import { newJobRequest } from '../model/job-request';
import type { Config } from '../platform/config';
import { AuthError, InputError, NotFoundError, SolsticeError } from '../platform/errors';
import type { Logger } from '../platform/logger';
import { ArtifactStore, artifactBlobKey, validateArtifactPath } from '../storage/artifact-store';
import type { BlobStore } from '../storage/blob-store';
import type { JobRecord, JobStore, LogLineRecord } from '../storage/job-store';
import { sendLogLines } from '../storage/log-follow';
import { LogExpiredError } from '../storage/log-store';
import { PipelineStore, type PipelineRecord } from '../storage/pipeline-store';
import { jobSteps, pipelineView } from '../storage/run-views';
import * as c from './contract';
import { openApiDocument, ROUTES, type RouteName } from './routes';

export interface ApiOptions {
  jobs: JobStore;
  blobs: BlobStore;
  tokens: TokenStore;
  access: AccessSources;
  /** What starting and rerunning pipelines need (task queue, timeouts, public URL). */
  cfg: Config;
  /** A Temporal client, connected on first use: reading needs none. */
  temporal: () => Promise<Client>;
  log: Logger;
  /** The caller when no bearer token is given (the pages' session); undefined: 401. */
  sessionPrincipal?: (req: FastifyRequest) => Promise<Principal | undefined>;
  /** How often a followed log looks for new lines (default 250 ms). */
  pollMs?: number;
}

/** An answer other than success, with its status and a stable code. */
export class ApiError extends SolsticeError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    hint?: string,
  ) {
    super(message, hint);
  }
}

const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  410: 'gone',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  500: 'internal',
  503: 'unavailable',
};

function errorOf(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof AuthError) return new ApiError(401, 'unauthorized', err.message, err.hint);
  if (err instanceof NotFoundError) return new ApiError(404, 'not_found', err.message, err.hint);
  if (err instanceof InputError) return new ApiError(400, 'bad_request', err.message, err.hint);
  if (err instanceof LogExpiredError) return new ApiError(410, 'gone', err.message);
  const status = (err as { statusCode?: number }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return new ApiError(status, CODES[status] ?? 'bad_request', (err as Error).message);
  return new ApiError(500, 'internal', 'internal error; the server log has the details');
}

function sendError(reply: FastifyReply, e: ApiError): FastifyReply {
  if (e.status === 401) void reply.header('www-authenticate', 'Bearer realm="solstice"');
  return reply
    .code(e.status)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send({
      error: { status: e.status, code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) },
    });
}

/** Reads one part of a request against its schema; what does not fit is a 400 naming each problem. */
function read<T extends z.ZodType>(schema: T | undefined, value: unknown, part: string): z.output<T> {
  if (!schema) return {} as z.output<T>;
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) =>
    i.code === 'unrecognized_keys'
      ? `unknown ${part} ${i.keys.length > 1 ? 'fields' : 'field'} ${i.keys.join(', ')}`
      : `${part} ${i.path.join('.') || 'value'}: ${i.message}`,
  );
  throw new ApiError(
    400,
    'bad_request',
    problems.join('; '),
    'the OpenAPI document at /api/openapi.json lists what each route takes',
  );
}

const denied = (what: string) => new ApiError(404, 'not_found', `no ${what}`);

/**
 * One page of a list route's answer. It asks `list` for one row more than a page holds: that row
 * says whether a next page follows, without counting every row.
 */
async function onePage<Row, Item>(
  q: { page: number; per_page: number },
  list: (limit: number, offset: number) => Promise<Row[]>,
  show: (rows: Row[]) => Promise<Item[]>,
): Promise<{ items: Item[]; page: number; per_page: number; next_page: number | null }> {
  const rows = await list(q.per_page + 1, (q.page - 1) * q.per_page);
  return {
    items: await show(rows.slice(0, q.per_page)),
    page: q.page,
    per_page: q.per_page,
    next_page: rows.length > q.per_page ? q.page + 1 : null,
  };
}

export function registerApi(app: FastifyInstance, opts: ApiOptions): void {
  void app.register(
    (api, _o, done) => {
      mountRoutes(api, opts);
      done();
    },
    { prefix: '/api' },
  );
}

function mountRoutes(api: FastifyInstance, opts: ApiOptions): void {
  const { jobs, blobs, tokens, access } = opts;
  const pipelines = new PipelineStore(jobs.db);
  const artifacts = new ArtifactStore(jobs.db);
  const capacity = new CapacityStore(jobs.db);
  const pollMs = opts.pollMs ?? 250;
  let temporal: Promise<Client> | undefined;
  const client = () =>
    (temporal ??= opts.temporal().catch((err: unknown) => ((temporal = undefined), Promise.reject(err))));

  // The pages parse forms (their buttons); the API takes JSON only, so a form sent to it is
  // refused as the wrong media type rather than read.
  if (api.hasContentTypeParser('application/x-www-form-urlencoded'))
    api.removeContentTypeParser('application/x-www-form-urlencoded');
  api.setErrorHandler((err, req, reply) => {
    const e = errorOf(err);
    if (e.status >= 500) opts.log.error({ err, url: req.url }, 'API request failed');
    return sendError(reply, e);
  });
  api.setNotFoundHandler((req, reply) =>
    sendError(
      reply,
      new ApiError(
        404,
        'not_found',
        `no route ${req.method} ${req.url.split('?')[0]}`,
        'GET /api/openapi.json lists the routes',
      ),
    ),
  );
  // Checked before routing, so a huge query string costs no parsing and no database work.
  api.addHook('onRequest', async (req) => {
    if (req.url.length > c.URL_MAX)
      throw new ApiError(
        414,
        'uri_too_long',
        `the request target is ${req.url.length} characters; at most ${c.URL_MAX} are accepted`,
      );
  });

  async function principalOf(req: FastifyRequest): Promise<Principal> {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) throw new AuthError('the Authorization header must be "Bearer <token>"');
      return tokens.authenticate(m[1]);
    }
    const session = await opts.sessionPrincipal?.(req);
    if (session) return session;
    throw new AuthError(
      'this needs a token',
      'send Authorization: Bearer <token>; an operator makes one with `solstice token create`',
    );
  }

  /** Throws what the policy says unless `principal` may `action` on the repository. */
  async function check(principal: Principal, action: Action, repoUrl: string, what: string): Promise<void> {
    const d = await authorize(principal, action, { url: repoUrl }, access);
    if (d.allowed) return;
    // A denied read says exactly what a missing id says.
    if (d.status === 404) throw denied(what);
    throw new ApiError(d.status, CODES[d.status], d.reason);
  }

  async function jobFor(principal: Principal, id: string, action: Action = 'read'): Promise<JobRecord> {
    const job = await jobs.getJob(id);
    if (!job) throw denied(`job ${id}`);
    await check(principal, action, job.repoUrl, `job ${id}`);
    return job;
  }

  async function pipelineFor(
    principal: Principal,
    id: string,
    action: Action = 'read',
  ): Promise<PipelineRecord> {
    const p = await pipelines.getPipeline(id);
    if (!p) throw denied(`pipeline ${id}`);
    await check(principal, action, p.repoUrl, `pipeline ${id}`);
    return p;
  }

  /** Rows the principal may read: tokens limited to repositories are filtered by the database too. */
  async function readable<T extends { repoUrl: string }>(principal: Principal, rows: T[]): Promise<T[]> {
    const ok = await Promise.all(
      rows.map(async (r) => (await authorize(principal, 'read', { url: r.repoUrl }, access)).allowed),
    );
    return rows.filter((_, i) => ok[i]);
  }

  /** A list route's filters, narrowed to the repositories a token is limited to. */
  const runFilterOf = <S>(q: { repo?: string; branch?: string; state?: S }, p: Principal) => ({
    repo: q.repo,
    branch: q.branch,
    state: q.state,
    ...(p.kind === 'token' && p.repos ? { repos: p.repos } : {}),
  });

  type Handler = (
    req: FastifyRequest,
    reply: FastifyReply,
    input: {
      principal: Principal;
      params: Record<string, string>;
      query: Record<string, unknown>;
      body: Record<string, unknown>;
    },
  ) => Promise<unknown>;

  const handlers: Record<RouteName, Handler> = {
    openapi: async (_req, reply) => reply.header('cache-control', 'no-cache').send(openApiDocument()),

    listPipelines: async (_req, _reply, { principal, query }) => {
      const q = query as z.output<typeof c.pipelinesQuery>;
      return onePage(
        q,
        (limit, offset) => pipelines.listPipelines(limit, runFilterOf(q, principal), offset),
        (rows) => readable(principal, rows),
      );
    },

    getPipeline: async (_req, _reply, { principal, params }) =>
      pipelineView(jobs, await pipelineFor(principal, params.id)),

    cancelPipeline: async (_req, reply, { principal, params }) => {
      const p = await pipelineFor(principal, params.id, 'write');
      return cancel(reply, p.state, `pipeline ${p.id}`, p.workflowId);
    },

    rerunPipeline: async (_req, reply, { principal, params, body }) => {
      const p = await pipelineFor(principal, params.id, 'write');
      const { failed } = body as z.output<typeof c.rerunBody>;
      const { rerunPipeline } = await import('../ingress/pipeline-start');
      const started = await rerunPipeline(await client(), opts.cfg, p, await pipelines.listJobs(p.id), {
        failedOnly: failed,
      });
      return reply.code(201).send(started);
    },

    enqueue: async (_req, reply, { principal, body }) => {
      const b = body as z.output<typeof c.enqueueBody>;
      await check(principal, 'write', b.repo, `repository ${b.repo}`);
      const { startPipelineForRequest } = await import('../ingress/pipeline-start');
      const r = newJobRequest({
        source: 'manual',
        repoUrl: b.repo,
        commitSha: b.commit,
        ref: b.ref ?? b.commit,
        ...(b.event !== 'manual' ? { event: b.event } : {}),
        runsOn: b.label,
        ...(b.workflow ? { workflowPath: b.workflow, inputs: b.inputs ?? {} } : {}),
        deliveryId: `api-${randomUUID()}`,
      });
      const started = await startPipelineForRequest(await client(), opts.cfg, r);
      return reply.code(201).send({ pipelineId: started.pipelineId, workflowId: started.workflowId });
    },

    listJobs: async (_req, _reply, { principal, query }) => {
      const q = query as z.output<typeof c.jobsQuery>;
      return onePage(
        q,
        (limit, offset) => jobs.listJobs(limit, runFilterOf(q, principal), offset),
        async (rows) => {
          const shown = await readable(principal, rows);
          const names = await pipelines.jobNames(shown.map((j) => j.id));
          return shown.map((j) => ({ ...j, name: names.get(j.id) ?? null }));
        },
      );
    },

    getJob: async (_req, _reply, { principal, params }) => {
      const job = await jobFor(principal, params.id);
      const [names, steps, logLines, pipeline, queuePosition] = await Promise.all([
        pipelines.jobNames([job.id]),
        jobSteps(jobs, job.id),
        job.logExpiredAt ? 0 : jobs.countLogLines(job.id),
        pipelines.pipelineOfJob(job.id),
        job.state === 'queued' ? capacity.queuePosition(job.id) : undefined,
      ]);
      return {
        ...job,
        name: names.get(job.id) ?? null,
        logLines,
        ...steps,
        queuePosition: queuePosition ?? null,
        pipeline: pipeline ? { id: pipeline.id, number: pipeline.number, state: pipeline.state } : null,
      };
    },

    cancelJob: async (_req, reply, { principal, params }) => {
      const job = await jobFor(principal, params.id, 'write');
      return cancel(reply, job.state, `job ${job.id}`, job.workflowId);
    },

    jobLog: async (_req, _reply, { principal, params, query }) => {
      const job = await jobFor(principal, params.id);
      const q = query as z.output<typeof c.logQuery>;
      if (job.logExpiredAt) throw new LogExpiredError(job.id, job.logExpiredAt);
      const [lines, lastSeq] = await Promise.all([
        jobs.logLinesAfter(job.id, q.after, q.limit),
        jobs.lastLogSeq(job.id),
      ]);
      const next = lines.length > 0 ? lines[lines.length - 1].seq : q.after;
      return {
        lines: lines.map((l) => ({ seq: l.seq, stream: l.stream, text: l.text, time: l.time })),
        lastSeq,
        next: next < lastSeq ? next : null,
        state: job.state,
      };
    },

    jobLogEvents: async (_req, reply, { principal, params, query }) => {
      // A pipeline names its job's id a moment before the job records itself: the stream
      // waits for it, as `solstice logs -f` does, with access decided by the pipeline's repository.
      const job = await jobs.getJob(params.id);
      const repoUrl = job?.repoUrl ?? (await pipelines.pipelineOfJob(params.id))?.repoUrl;
      if (!repoUrl) throw denied(`job ${params.id}`);
      await check(principal, 'read', repoUrl, `job ${params.id}`);
      const headerResume = reply.request.headers['last-event-id'];
      const after =
        headerResume !== undefined
          ? read(c.eventsQuery, { after: headerResume }, 'Last-Event-ID').after
          : (query as z.output<typeof c.eventsQuery>).after;
      await streamLog(reply, params.id, after);
      return reply;
    },

    listArtifacts: async (_req, _reply, { principal, params, query }) => {
      const job = await jobFor(principal, params.id);
      // The store lists from the first artifact on: the page is cut from what it returns.
      return onePage(
        query as z.output<typeof c.pageQuery>,
        async (limit, offset) => (await artifacts.list(job.id, offset + limit)).slice(offset),
        async (rows) => rows,
      );
    },

    getArtifact: async (_req, reply, { principal, params }) => {
      // The path is checked before the job is looked at: a traversal is bad input whatever the id.
      const artifactPath = validateArtifactPath(params['*']);
      const job = await jobFor(principal, params.id);
      const artifact = await artifacts.get(job.id, artifactPath);
      const body: Readable | undefined = artifact
        ? await blobs.getStream(artifactBlobKey(job.id, artifact.path))
        : undefined;
      if (!artifact || !body)
        throw new NotFoundError(
          `job ${job.id} has no artifact ${artifactPath}`,
          `GET /api/v1/jobs/${job.id}/artifacts lists them`,
        );
      return asDownload(reply, artifact.path, artifact.size)
        .header('x-checksum-sha256', artifact.sha256)
        .send(body);
    },

    validateWorkflow: async (_req, _reply, { body }) => {
      const b = body as z.output<typeof c.validateBody>;
      const [{ parseWorkflowFile, checkReport, DEFAULT_RUNS_ON }] = await Promise.all([
        import('../workflow-file'),
      ]);
      return checkReport(
        parseWorkflowFile(b.content, {
          knownLabels: b.labels && b.labels.length > 0 ? b.labels : [DEFAULT_RUNS_ON],
        }),
      );
    },
  };

  async function cancel(
    reply: FastifyReply,
    state: string,
    what: string,
    workflowId: string,
  ): Promise<FastifyReply> {
    if (!['queued', 'provisioning', 'running'].includes(state))
      throw new ApiError(409, 'conflict', `${what} already ended ${state}; there is nothing to cancel`);
    await (await client()).workflow.getHandle(workflowId).cancel();
    return reply.code(202).send({ cancelRequested: true, workflowId });
  }

  async function streamLog(reply: FastifyReply, jobId: string, after: number): Promise<void> {
    const stream = openEventStream(reply);
    try {
      const row = (l: LogLineRecord) => ({ seq: l.seq, stream: l.stream, text: l.text, time: l.time });
      if (!(await sendLogLines(stream, jobs, jobId, { after, pollMs }, row))) return;
      const job = await jobs.getJob(jobId);
      const final = job && FINAL_STATES.includes(job.state);
      await stream.send(
        'end',
        JSON.stringify({ state: job?.state ?? null, exitCode: job?.exitCode ?? null, final }),
      );
    } catch (err) {
      opts.log.warn({ err, jobId }, 'API log stream failed');
      if (!stream.ended()) await stream.send('error', JSON.stringify({ message: errorOf(err).message }));
    } finally {
      stream.end();
    }
  }

  for (const [name, spec] of Object.entries(ROUTES) as [RouteName, c.RouteSpec][]) {
    api.route({
      method: spec.method,
      url: spec.path,
      bodyLimit: name === 'validateWorkflow' ? c.WORKFLOW_BODY_LIMIT + 4096 : c.BODY_LIMIT,
      handler: async (req, reply) => {
        // The document is public: it says what the API takes, nothing about what it holds.
        const principal: Principal = name === 'openapi' ? { kind: 'anonymous' } : await principalOf(req);
        const params = read(spec.params, req.params, 'path') as Record<string, string>;
        const query = read(spec.query ?? c.noQuery, req.query, 'query') as Record<string, unknown>;
        const body =
          spec.method === 'POST'
            ? (read(spec.body ?? c.cancelBody, req.body ?? {}, 'body') as Record<string, unknown>)
            : {};
        const result = await handlers[name](req, reply, { principal, params, query, body });
        return result === reply ? reply : reply.header('cache-control', 'no-store').send(result);
      },
    });
  }
}
