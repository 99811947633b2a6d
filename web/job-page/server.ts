/**
 * The job page: what a forge's status links to (SOLSTICE_PUBLIC_URL/jobs/<job id>).
 *   GET /jobs/:id                 status, steps, artifacts and a window of the log (HTML)
 *   GET /jobs/:id/events?after=N  new log lines and step changes as server-sent events until the job ends
 *   GET /jobs/:id/log.txt         the whole log as text, streamed from the chunks or the blob store
 *   GET /jobs/:id/artifacts/<p>   one artifact, streamed from the blob store
 *   GET /pipelines                every readable pipeline, newest first (?repo= ?branch= ?state= ?before=)
 *   GET /repos/:owner/:repo       one repository's pipelines (same filters)
 *   GET /pipelines/:id            a pipeline's jobs as a graph and a table, linked to their pages
 *   POST /pipelines/:id/cancel    cancels it (write access, CSRF token)
 *   POST /pipelines/:id/rerun     reruns it, or only what failed with failed=1 (write access, CSRF token)
 *   GET /badge/:owner/:repo.svg   the newest pipeline's state on ?branch= (default main), cacheable
 * plus the sign-in routes of web/sign-in/session.ts. Every route of a run asks access/policy.ts
 * first: a run the visitor may not read answers 404 exactly like an id that does not exist, and
 * ids are whole UUIDs (a prefix would let anyone find every run by trying 65536 of them).
 * Everything streams or is bounded: no request holds a whole log or artifact in memory.
 * With `api`, the HTTP API (api/server.ts) is served under /api by the same server.
 */
import type { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { forgeRepoOf } from '../../model/repo-url';
import { ArtifactStore, artifactBlobKey } from '../../storage/artifact-store';
import type { BlobStore } from '../../storage/blob-store';
import { AuthError, ForbiddenError, InputError, NotFoundError } from '../../platform/errors';
import type { JobRecord, JobStore, LogLineRecord } from '../../storage/job-store';
import { sendLogLines } from '../../storage/log-follow';
import { LogExpiredError } from '../../storage/log-store';
import type { Logger } from '../../platform/logger';
import { listenHttp } from '../../platform/net';
import { asDownload } from '../../platform/download';
import { openEventStream } from '../../platform/event-stream';
import { FINAL_STATES } from '../../model/domain';
import { pipelineLabel, PipelineStore, type PipelineRecord } from '../../storage/pipeline-store';
import { authorize, type AccessSources } from '../../access/policy';
import { renderJobPage, renderNotFound, stepRows } from './render';
import { checkCsrf, csrfToken, installSessions, type SignInOptions } from '../sign-in/session';
import { badgeSvg, renderPipelineList, renderPipelinePage, type Viewer } from '../pipelines/render';
import { findPipelines, parseListQuery, repoPipelineFilter, type ListQuery } from '../pipelines/list';
import { registerApi, type ApiOptions } from '../../api/server';

export interface JobPageOptions {
  addr: string;
  jobs: JobStore;
  blobs: BlobStore;
  log: Logger;
  /** Log lines the page shows at once (default 1000). */
  window?: number;
  /** How often a live page's event stream looks for new lines (default 250 ms). */
  pollMs?: number;
  /**
   * Who may see and change what. Absent: every visitor counts as the operator, as before
   * sign-in existed; only tests and benches on loopback leave it out (`solstice job-page` and
   * the devstack always set it).
   */
  access?: WebAccess;
  /** What the cancel and rerun buttons do; without it the pages offer neither. */
  actions?: PipelineActions;
  /** Believe X-Forwarded-Proto/-For (SOLSTICE_TRUST_PROXY). */
  trustProxy?: boolean;
  /** Serve the API under /api too (one public URL for pages and API). */
  api?: Omit<ApiOptions, 'jobs' | 'blobs' | 'log' | 'pollMs'>;
}

export interface WebAccess {
  sources: AccessSources;
  /** Sign-in through the forges; without it every visitor is anonymous. */
  signIn?: SignInOptions;
}

export interface PipelineActions {
  cancel(workflowId: string): Promise<void>;
  rerun(p: PipelineRecord, failedOnly: boolean): Promise<{ pipelineId: string }>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface RunningJobPage {
  url: string;
  /** Every route the server answers (method and pattern). */
  routes: { method: string; url: string }[];
  close(): Promise<void>;
}

/** Rows of the artifacts table; the rest are counted. */
const ARTIFACTS_SHOWN = 200;

export async function buildJobPageApp(opts: JobPageOptions): Promise<FastifyInstance> {
  const { jobs, blobs } = opts;
  const artifacts = new ArtifactStore(jobs.db);
  const pipelines = new PipelineStore(jobs.db);
  const window = opts.window ?? 1000;
  const pollMs = opts.pollMs ?? 250;
  const app = Fastify({
    logger: false,
    return503OnClosing: true,
    trustProxy: opts.trustProxy ?? false,
    // Ids, filters and artifact paths are short; anything longer is not ours.
    routerOptions: { maxParamLength: 4200 },
  });
  /** Every route, as registered: the access tests walk them all rather than a sample. */
  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url });
  });
  app.decorate('solsticeRoutes', routes);

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status =
      err instanceof NotFoundError
        ? 404
        : err instanceof InputError
          ? 400
          : err instanceof AuthError
            ? 401
            : err instanceof ForbiddenError
              ? 403
              : (err.statusCode ?? 500);
    if (status >= 500) opts.log.error({ err }, 'job page request failed');
    void reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(renderNotFound(status >= 500 ? 'internal error' : err.message));
  });

  const access = opts.access;
  await installSessions(app, access?.signIn, access ? { kind: 'anonymous' } : { kind: 'operator' });
  const sources = access?.sources;
  // After the sessions' hooks, so API requests carry the visitor too. A page session may read
  // through the API; changes need a token, as a cookie alone would open the API to cross-site POSTs.
  if (opts.api)
    registerApi(app, {
      ...opts.api,
      jobs,
      blobs,
      log: opts.log,
      pollMs,
      sessionPrincipal: async (req) =>
        req.method === 'GET' && req.principal.kind === 'user' ? req.principal : undefined,
    });

  /** Throws what the policy decided: 404 for a run the visitor may not read, 401/403 for changes. */
  const allow = async (req: FastifyRequest, action: 'read' | 'write', repoUrl: string, what: string) => {
    if (!sources) return;
    const d = await authorize(req.principal, action, { url: repoUrl }, sources);
    if (d.allowed) return;
    if (d.status === 404) throw new NotFoundError(`no ${what}`);
    if (d.status === 401) throw new AuthError(d.reason, 'sign in (/login) first');
    throw new ForbiddenError(d.reason);
  };
  const mayWrite = async (req: FastifyRequest, repoUrl: string): Promise<boolean> => {
    if (!opts.actions) return false;
    if (!sources) return true;
    if (!req.webSession) return false;
    return (await authorize(req.principal, 'write', { url: repoUrl }, sources)).allowed;
  };
  const viewer = (req: FastifyRequest): Viewer => ({
    ...(req.webSession ? { login: req.webSession.login, csrf: csrfToken(req) } : {}),
    here: req.url,
    signInAvailable: Boolean(access?.signIn?.providers.length),
  });

  /** A job by its whole id, if this visitor may read it. */
  const wholeId = (id: string, what: string) => {
    if (!UUID.test(id))
      throw new InputError(
        `"${id.slice(0, 40)}" is not a ${what} id: pages take whole ids (UUIDs), not prefixes`,
      );
  };
  const jobOf = async (req: FastifyRequest, id: string): Promise<JobRecord> => {
    wholeId(id, 'job');
    const job = await jobs.getJob(id);
    if (!job) throw new NotFoundError(`no job ${id}`);
    await allow(req, 'read', job.repoUrl, `job ${id}`);
    return job;
  };
  const pipelineOf = async (req: FastifyRequest, id: string): Promise<PipelineRecord> => {
    wholeId(id, 'pipeline');
    const p = await pipelines.getPipeline(id);
    if (!p) throw new NotFoundError(`no pipeline ${id}`);
    await allow(req, 'read', p.repoUrl, `pipeline ${id}`);
    return p;
  };

  app.get<{ Params: { id: string }; Querystring: { before?: string } }>('/jobs/:id', async (req, reply) => {
    const job = await jobOf(req, req.params.id);
    // An expired log has no lines: lastSeq is 0 and the page says when it expired.
    const lastSeq = job.logExpiredAt ? 0 : await jobs.lastLogSeq(job.id);
    const before = req.query.before !== undefined ? Number(req.query.before) : undefined;
    if (before !== undefined && (!Number.isInteger(before) || before < 1))
      throw new InputError(`?before= must be a line number, got "${req.query.before}"`);
    // Sequence numbers are dense from 1, so a window is one index range scan, whatever the log's size.
    const end = Math.min(before ?? lastSeq + 1, lastSeq + 1);
    const from = Math.max(0, end - 1 - window);
    const [steps, arts, artifactCount, lines, pipeline, names] = await Promise.all([
      jobs.stepTable(job.id),
      artifacts.list(job.id, ARTIFACTS_SHOWN),
      artifacts.count(job.id),
      job.logExpiredAt ? [] : jobs.logLinesAfter(job.id, from, end - 1 - from),
      pipelines.pipelineOfJob(job.id),
      pipelines.jobNames([job.id]),
    ]);
    const live = before === undefined && !FINAL_STATES.includes(job.state);
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(
        renderJobPage({
          job,
          steps,
          artifacts: arts,
          artifactCount,
          lines,
          lastSeq,
          window,
          live,
          name: names.get(job.id),
          ...(pipeline
            ? { pipeline: { id: pipeline.id, label: pipelineLabel(pipeline), state: pipeline.state } }
            : {}),
        }),
      );
  });

  const listPage = async (
    req: FastifyRequest,
    reply: FastifyReply,
    q: ListQuery,
    title: string,
    repoFixed: boolean,
  ) => {
    const readable = async (repoUrl: string) => {
      if (!sources) return true;
      return (await authorize(req.principal, 'read', { url: repoUrl }, sources)).allowed;
    };
    const page = await findPipelines(pipelines, q, readable);
    const labels = new Map(page.pipelines.map((p) => [p.id, pipelineLabel(p)]));
    const older = page.older
      ? `${req.url.split('?')[0]}?${new URLSearchParams({
          ...(q.repo && !repoFixed ? { repo: q.repo } : {}),
          ...(q.branch ? { branch: q.branch } : {}),
          ...(q.state ? { state: q.state } : {}),
          before: page.older,
        }).toString()}`
      : undefined;
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(
        renderPipelineList({
          title,
          pipelines: page.pipelines,
          labels,
          filters: { repo: q.repo, branch: q.branch, state: q.state },
          repoFixed,
          ...(older ? { olderHref: older } : {}),
          viewer: viewer(req),
        }),
      );
  };

  app.get('/pipelines', async (req, reply) =>
    listPage(req, reply, parseListQuery(req.query, {}), 'Pipelines', false),
  );

  app.get<{ Params: { owner: string; repo: string } }>('/repos/:owner/:repo', async (req, reply) => {
    const fixed = repoPipelineFilter(req.params.owner, req.params.repo);
    return listPage(
      req,
      reply,
      parseListQuery(req.query, { repoSuffix: fixed }),
      `Pipelines of ${req.params.owner}/${req.params.repo}`,
      true,
    );
  });

  app.get<{ Params: { id: string } }>('/pipelines/:id', async (req, reply) => {
    const pipeline = await pipelineOf(req, req.params.id);
    const list = await pipelines.listJobs(pipeline.id);
    const forge = forgeRepoOf(pipeline.repoUrl);
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(
        renderPipelinePage({
          pipeline,
          label: pipelineLabel(pipeline),
          jobs: list,
          canChange: await mayWrite(req, pipeline.repoUrl),
          viewer: viewer(req),
          ...(forge
            ? { repoHref: `/repos/${encodeURIComponent(forge.owner)}/${encodeURIComponent(forge.repo)}` }
            : {}),
        }),
      );
  });

  /** A change: readable first (else 404), then the form's CSRF token, then write access. */
  const change = async (req: FastifyRequest, id: string): Promise<PipelineRecord> => {
    const p = await pipelineOf(req, id);
    if (sources) checkCsrf(req);
    await allow(req, 'write', p.repoUrl, `pipeline ${id}`);
    if (!opts.actions)
      throw new ForbiddenError('this page server cannot cancel or rerun (no Temporal client)');
    return p;
  };

  app.post<{ Params: { id: string } }>('/pipelines/:id/cancel', async (req, reply) => {
    const p = await change(req, req.params.id);
    if (p.state === 'running') await opts.actions?.cancel(p.workflowId);
    return reply.redirect(`/pipelines/${p.id}`, 303);
  });

  app.post<{ Params: { id: string } }>('/pipelines/:id/rerun', async (req, reply) => {
    const p = await change(req, req.params.id);
    const failed = (req.body as Record<string, unknown> | undefined)?.failed === '1';
    const started = await (opts.actions as PipelineActions).rerun(p, failed);
    // The new pipeline's row is written by its workflow's first activity: wait for it briefly,
    // so the page the browser lands on exists.
    const until = Date.now() + 15_000;
    while (!(await pipelines.getPipeline(started.pipelineId)) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    return reply.redirect(`/pipelines/${started.pipelineId}`, 303);
  });

  app.get<{ Params: { owner: string; repo: string }; Querystring: { branch?: string } }>(
    '/badge/:owner/:repo.svg',
    async (req, reply) => {
      const branch = req.query.branch ?? 'main';
      if (branch.length > 255 || /[\0\s]/.test(branch)) throw new InputError('?branch= is a branch name');
      const fixed = repoPipelineFilter(req.params.owner, req.params.repo);
      const newest = await pipelines.newestOnBranch(fixed, branch);
      // A repository nobody may read has no badge, exactly like one without pipelines.
      if (!newest) throw new NotFoundError(`no pipelines of ${req.params.owner}/${req.params.repo}`);
      await allow(req, 'read', newest.repoUrl, `pipelines of ${req.params.owner}/${req.params.repo}`);
      const body = badgeSvg(newest.state);
      const open =
        !sources ||
        (await authorize({ kind: 'anonymous' }, 'read', { url: newest.repoUrl }, sources)).allowed;
      const etag = `"${newest.id.slice(0, 8)}-${newest.state}"`;
      reply
        .type('image/svg+xml; charset=utf-8')
        // Shared caches (a forge's image proxy, a CDN) may keep a public repository's badge.
        .header('cache-control', `${open ? 'public' : 'private'}, max-age=60`)
        .header('etag', etag)
        .header('x-content-type-options', 'nosniff');
      if (req.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.send(body);
    },
  );

  app.get<{ Params: { id: string } }>('/jobs/:id/log.txt', async (req, reply) => {
    const job = await jobOf(req, req.params.id);
    let body: Readable;
    try {
      body = await jobs.logs.textStream(job.id);
    } catch (err) {
      if (!(err instanceof LogExpiredError)) throw err;
      return reply.code(410).type('text/plain; charset=utf-8').send(`${err.message}\n`);
    }
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(body);
  });

  app.get<{ Params: { id: string }; Querystring: { after?: string } }>(
    '/jobs/:id/events',
    async (req, reply) => {
      const job = await jobOf(req, req.params.id);
      // EventSource resends the last id it saw when it reconnects.
      const resume = req.headers['last-event-id'] ?? req.query.after ?? '0';
      const after = Number(resume);
      if (!Number.isInteger(after) || after < 0) throw new InputError(`bad resume point "${String(resume)}"`);
      return streamEvents(reply, job.id, after);
    },
  );

  async function streamEvents(reply: FastifyReply, jobId: string, after: number): Promise<void> {
    const stream = openEventStream(reply);
    // Steps change apart from the lines (the runner reports them by their own call): looked at
    // on a timer of their own and sent when they differ from what the page has.
    // The first look always sends: the page may have been rendered a while before it connected.
    let stepsSent = '';
    let checking = false;
    const stepTimer = setInterval(() => {
      if (checking || stream.signal.aborted) return;
      checking = true;
      jobs
        .stepTable(jobId)
        .then(async (steps) => {
          const json = JSON.stringify(stepRows(jobId, steps, window));
          if (json === stepsSent || stream.signal.aborted || stream.ended()) return;
          stepsSent = json;
          await stream.send('steps', json);
        })
        .catch((err: unknown) => opts.log.warn({ err, jobId }, 'job page could not read steps'))
        .finally(() => (checking = false));
    }, pollMs * 2);
    try {
      const row = (l: LogLineRecord) => ({ seq: l.seq, stream: l.stream, text: l.text });
      if (!(await sendLogLines(stream, jobs, jobId, { after, pollMs }, row))) return;
      const job = await jobs.getJob(jobId);
      await stream.send('end', JSON.stringify({ state: job?.state, exitCode: job?.exitCode }));
    } catch (err) {
      opts.log.warn({ err, jobId }, 'job page event stream failed');
    } finally {
      clearInterval(stepTimer);
      stream.end();
    }
  }

  app.get<{ Params: { id: string; '*': string } }>('/jobs/:id/artifacts/*', async (req, reply) => {
    const job = await jobOf(req, req.params.id);
    const artifactPath = req.params['*'];
    // No stored path has a NUL or is that long: answer as for any other unknown path.
    if (artifactPath.includes('\0') || artifactPath.length > 4096)
      throw new InputError('an artifact path has no NUL character and at most 4096 characters');
    const artifact = await artifacts.get(job.id, artifactPath);
    const body = artifact ? await blobs.getStream(artifactBlobKey(job.id, artifact.path)) : undefined;
    if (!artifact || !body) throw new NotFoundError(`job ${job.id} has no artifact ${artifactPath}`);
    return asDownload(reply, artifact.path, artifact.size).send(body);
  });

  app.get('/', async (_req, reply) => reply.redirect('/pipelines', 302));
  return app;
}

export async function startJobPage(opts: JobPageOptions): Promise<RunningJobPage> {
  const app = await buildJobPageApp(opts);
  const url = await listenHttp(app, opts.addr);
  opts.log.info({ url }, 'job page listening');
  return {
    url,
    routes: (app as unknown as { solsticeRoutes: { method: string; url: string }[] }).solsticeRoutes,
    // Open event streams would keep close() waiting until their jobs end.
    close: async () => {
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
    },
  };
}
