/**
 * The job page: what a forge's status links to (SOLSTICE_PUBLIC_URL/jobs/<job id>).
 *   GET /jobs/:id                 status, steps, artifacts and a window of the log (HTML)
 *   GET /jobs/:id/events?after=N  new log lines and step changes as server-sent events until the job ends
 *   GET /jobs/:id/log.txt         the whole log as text, streamed from the chunks or the blob store
 *   GET /jobs/:id/artifacts/<p>   one artifact, streamed from the blob store
 *   GET /pipelines/:id            a pipeline's jobs, linked to their pages (what a job page links to)
 * Everything streams or is bounded: no request holds a whole log or artifact in memory.
 * With `api`, the HTTP API (api/server.ts) is served under /api by the same server.
 */
import type { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { ArtifactStore, artifactBlobKey } from '../../storage/artifact-store';
import type { BlobStore } from '../../storage/blob-store';
import { InputError, NotFoundError } from '../../platform/errors';
import type { JobRecord, JobStore } from '../../storage/job-store';
import { readLogPages } from '../../storage/log-follow';
import { LogExpiredError } from '../../storage/log-store';
import type { Logger } from '../../platform/logger';
import { listenHttp } from '../../platform/net';
import { FINAL_STATES } from '../../model/domain';
import { pipelineLabel, PipelineStore } from '../../storage/pipeline-store';
import { renderJobPage, renderNotFound, renderPipelinePage, stepRows } from './render';
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
  /** Serve the API under /api too (one public URL for pages and API). */
  api?: Omit<ApiOptions, 'jobs' | 'blobs' | 'log' | 'pollMs'>;
}

export interface RunningJobPage {
  url: string;
  close(): Promise<void>;
}

/** Rows of the artifacts table; the rest are counted. */
const ARTIFACTS_SHOWN = 200;

export function buildJobPageApp(opts: JobPageOptions): FastifyInstance {
  const { jobs, blobs } = opts;
  const artifacts = new ArtifactStore(jobs.db);
  const pipelines = new PipelineStore(jobs.db);
  const window = opts.window ?? 1000;
  const pollMs = opts.pollMs ?? 250;
  const app = Fastify({ logger: false, return503OnClosing: true });
  if (opts.api) registerApi(app, { ...opts.api, jobs, blobs, log: opts.log, pollMs });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status =
      err instanceof NotFoundError ? 404 : err instanceof InputError ? 400 : (err.statusCode ?? 500);
    if (status >= 500) opts.log.error({ err }, 'job page request failed');
    void reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(renderNotFound(status >= 500 ? 'internal error' : err.message));
  });

  const jobOf = (id: string): Promise<JobRecord> => jobs.resolveJob(id);

  app.get<{ Params: { id: string }; Querystring: { before?: string } }>('/jobs/:id', async (req, reply) => {
    const job = await jobOf(req.params.id);
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

  app.get<{ Params: { id: string } }>('/pipelines/:id', async (req, reply) => {
    const pipeline = await pipelines.resolvePipeline(req.params.id);
    const list = await pipelines.listJobs(pipeline.id);
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(renderPipelinePage({ pipeline, label: pipelineLabel(pipeline), jobs: list }));
  });

  app.get<{ Params: { id: string } }>('/jobs/:id/log.txt', async (req, reply) => {
    const job = await jobOf(req.params.id);
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
      const job = await jobOf(req.params.id);
      // EventSource resends the last id it saw when it reconnects.
      const resume = req.headers['last-event-id'] ?? req.query.after ?? '0';
      const after = Number(resume);
      if (!Number.isInteger(after) || after < 0) throw new InputError(`bad resume point "${String(resume)}"`);
      return streamEvents(reply, job.id, after);
    },
  );

  async function streamEvents(reply: FastifyReply, jobId: string, after: number): Promise<void> {
    const stop = new AbortController();
    reply.raw.on('close', () => stop.abort());
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    const send = (chunk: string): Promise<void> =>
      new Promise((resolve) => (reply.raw.write(chunk) ? resolve() : reply.raw.once('drain', resolve)));
    // Steps change apart from the lines (the runner reports them by their own call): looked at
    // on a timer of their own and sent when they differ from what the page has.
    // The first look always sends: the page may have been rendered a while before it connected.
    let stepsSent = '';
    let checking = false;
    const stepTimer = setInterval(() => {
      if (checking || stop.signal.aborted) return;
      checking = true;
      jobs
        .stepTable(jobId)
        .then(async (steps) => {
          const json = JSON.stringify(stepRows(jobId, steps, window));
          if (json === stepsSent || stop.signal.aborted || reply.raw.writableEnded) return;
          stepsSent = json;
          await send(`event: steps\ndata: ${json}\n\n`);
        })
        .catch((err: unknown) => opts.log.warn({ err, jobId }, 'job page could not read steps'))
        .finally(() => (checking = false));
    }, pollMs * 2);
    try {
      for await (const page of readLogPages(jobs, jobId, {
        follow: true,
        after,
        pollMs,
        signal: stop.signal,
      })) {
        if (stop.signal.aborted) return;
        const data = JSON.stringify(page.map((l) => ({ seq: l.seq, stream: l.stream, text: l.text })));
        await send(`id: ${page[page.length - 1].seq}\nevent: lines\ndata: ${data}\n\n`);
      }
      if (stop.signal.aborted) return;
      const job = await jobs.getJob(jobId);
      await send(`event: end\ndata: ${JSON.stringify({ state: job?.state, exitCode: job?.exitCode })}\n\n`);
    } catch (err) {
      opts.log.warn({ err, jobId }, 'job page event stream failed');
    } finally {
      clearInterval(stepTimer);
      reply.raw.end();
    }
  }

  app.get<{ Params: { id: string; '*': string } }>('/jobs/:id/artifacts/*', async (req, reply) => {
    const job = await jobOf(req.params.id);
    const artifactPath = req.params['*'];
    // No stored path has a NUL or is that long: answer as for any other unknown path.
    if (artifactPath.includes('\0') || artifactPath.length > 4096)
      throw new InputError('an artifact path has no NUL character and at most 4096 characters');
    const artifact = await artifacts.get(job.id, artifactPath);
    const body = artifact ? await blobs.getStream(artifactBlobKey(job.id, artifact.path)) : undefined;
    if (!artifact || !body) throw new NotFoundError(`job ${job.id} has no artifact ${artifactPath}`);
    const name = artifact.path.slice(artifact.path.lastIndexOf('/') + 1);
    return reply
      .type('application/octet-stream')
      .header('content-length', String(artifact.size))
      .header('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(name)}`)
      .header('x-content-type-options', 'nosniff')
      .send(body);
  });

  app.get('/', async (_req, reply) =>
    reply.type('text/plain; charset=utf-8').send('Solstice CI job pages: /jobs/<job id>\n'),
  );
  return app;
}

export async function startJobPage(opts: JobPageOptions): Promise<RunningJobPage> {
  const app = buildJobPageApp(opts);
  const url = await listenHttp(app, opts.addr);
  opts.log.info({ url }, 'job page listening');
  return {
    url,
    // Open event streams would keep close() waiting until their jobs end.
    close: async () => {
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
    },
  };
}
