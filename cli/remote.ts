/**
 * The CLI's remote mode: the same commands through the HTTP API (docs/api.md) with a token,
 * for people who have no database password or Temporal access. Reads go through RunSource,
 * so following, status and logs print what they print in direct mode. Logs are followed by
 * reading windows after the last line seen, as direct mode reads the database.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Config } from '../platform/config';
import {
  AuthError,
  ConfigError,
  DependencyUnavailableError,
  ForbiddenError,
  InputError,
  NotFoundError,
  SolsticeError,
} from '../platform/errors';
import type { ArtifactRecord } from '../storage/artifact-store';
import type { JobRecord, LogLineRecord, StepTable } from '../storage/job-store';
import type { PipelineJobRecord, PipelineRecord } from '../storage/pipeline-store';
import type { PipelineView } from '../storage/run-views';
import type { Target } from './pipelines';
import type { RunSource } from './run-source';

const DATE_FIELDS = new Set([
  'createdAt',
  'startedAt',
  'finishedAt',
  'logExpiredAt',
  'artifactsExpiredAt',
  'time',
  'expiresAt',
  'revokedAt',
  'lastUsedAt',
]);

/** JSON with the records' dates as Date objects again, as the stores give them. */
function parseJson(text: string): unknown {
  return JSON.parse(text, (key, value: unknown) =>
    DATE_FIELDS.has(key) && typeof value === 'string' ? new Date(value) : value,
  );
}

interface ErrorBody {
  error?: { status: number; code: string; message: string; hint?: string };
}

export type JobView = JobRecord & {
  name: string | null;
  logLines: number;
  steps: StepTable['steps'];
  lostAttempts: StepTable['lost'];
  queuePosition: number | null;
  pipeline: { id: string; number: number; state: string } | null;
};

export interface Page<T> {
  items: T[];
  page: number;
  per_page: number;
  next_page: number | null;
}

/** A typed error for an API answer, so the CLI prints it (and exits) as it prints its own. */
function errorFor(status: number, body: ErrorBody, what: string): SolsticeError {
  const message = body.error?.message ?? `${what}: HTTP ${status}`;
  const hint = body.error?.hint;
  if (status === 401)
    return new AuthError(
      `the API refused the token: ${message}`,
      hint ?? 'check SOLSTICE_TOKEN (`solstice token list` on the host)',
    );
  if (status === 403) return new ForbiddenError(message, hint);
  if (status === 404) return new NotFoundError(message, hint);
  if (status >= 400 && status < 500) return new InputError(message, hint);
  return new SolsticeError(`the API failed: ${message}`, hint);
}

export class ApiClient {
  private readonly base: string;

  constructor(
    url: string,
    private readonly token: string,
  ) {
    this.base = `${url.replace(/\/+$/, '')}/api`;
  }

  private async fetch(method: string, path: string, body?: unknown): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw new DependencyUnavailableError(
        'the Solstice API',
        this.base,
        'is SOLSTICE_API_URL the public URL of `solstice job-page` (or `solstice up`)?',
        { cause: (err as { cause?: unknown }).cause ?? err },
      );
    }
  }

  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(method, path, method === 'POST' ? (body ?? {}) : undefined);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? parseJson(text) : {};
    } catch {
      throw new SolsticeError(
        `the API at ${this.base} answered ${res.status} with something that is not JSON`,
      );
    }
    if (!res.ok) throw errorFor(res.status, parsed as ErrorBody, `${method} ${path}`);
    return parsed as T;
  }

  /** A GET that answers undefined for 404 (a run not recorded yet, or not readable). */
  async find<T>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** The newest `limit` rows of a list route, page by page. */
  private async list<T>(
    path: string,
    limit: number,
    filter: Record<string, string | undefined>,
  ): Promise<T[]> {
    const out: T[] = [];
    const perPage = Math.min(100, limit);
    for (let page = 1; out.length < limit; page++) {
      const query = new URLSearchParams({ page: String(page), per_page: String(perPage) });
      for (const [k, v] of Object.entries(filter)) if (v !== undefined) query.set(k, v);
      const answer = await this.request<Page<T>>('GET', `${path}?${query}`);
      out.push(...answer.items);
      if (answer.next_page === null) break;
    }
    return out.slice(0, limit);
  }

  listJobs(limit: number, filter: { repo?: string; branch?: string; state?: string }) {
    return this.list<JobRecord & { name: string | null }>('/v1/jobs', limit, filter);
  }

  listPipelines(limit: number, filter: { repo?: string; branch?: string; state?: string } = {}) {
    return this.list<PipelineRecord>('/v1/pipelines', limit, filter);
  }

  /** A job as `status --json` prints it in direct mode. */
  async jobJson(id: string): Promise<object> {
    const { pipeline: _p, queuePosition, ...job } = await this.request<JobView>('GET', `/v1/jobs/${id}`);
    return { ...job, ...(queuePosition !== null ? { queuePosition } : {}) };
  }

  listArtifacts(jobId: string): Promise<ArtifactRecord[]> {
    return this.list<ArtifactRecord>(`/v1/jobs/${jobId}/artifacts`, 10_000_000, {});
  }

  /** A download: the body as a stream, or the API's error. */
  async download(path: string): Promise<Readable> {
    const res = await this.fetch('GET', path);
    if (!res.ok) {
      const text = await res.text();
      let body: ErrorBody = {};
      try {
        body = JSON.parse(text) as ErrorBody;
      } catch {
        // The status says enough.
      }
      throw errorFor(res.status, body, `GET ${path}`);
    }
    if (!res.body) return Readable.from([]);
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  }
}

const WHOLE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const FINAL = ['success', 'failure', 'error', 'cancelled'];

export interface RemoteSession {
  api: ApiClient;
  source: RunSource;
  /** A pipeline or job by whole id, or `<pipeline id>/<job name>`. */
  resolveTarget(reference: string, jobName?: string): Promise<Target>;
  resolveJob(reference: string): Promise<JobRecord>;
}

export function remoteSession(cfg: Pick<Config, 'apiUrl' | 'apiToken'>): RemoteSession {
  if (!cfg.apiUrl || !cfg.apiToken)
    throw new ConfigError('remote mode needs SOLSTICE_API_URL and SOLSTICE_TOKEN');
  const api = new ApiClient(cfg.apiUrl, cfg.apiToken);
  const job = (id: string) => api.find<JobView>(`/v1/jobs/${id}`);
  const pipeline = (id: string) => api.find<PipelineView>(`/v1/pipelines/${id}`);

  const source: RunSource = {
    getPipeline: async (id) => strip(await pipeline(id)),
    listJobs: async (id) => (await pipeline(id))?.jobs ?? [],
    getJob: async (id) => jobRecord(await job(id)),
    stepTable: async (id) => {
      const j = await job(id);
      return { steps: j?.steps ?? [], lost: j?.lostAttempts ?? [] };
    },
    listLostAttempts: async (id) => (await job(id))?.lostAttempts ?? [],
    countLogLines: async (id) => (await job(id))?.logLines ?? 0,
    queuePosition: async (id) => (await job(id))?.queuePosition ?? undefined,
    pipelineOfJob: async (id) => {
      const p = (await job(id))?.pipeline;
      return p ? strip(await pipeline(p.id)) : undefined;
    },
    readLogPages: (id, opts) => readRemoteLog(api, id, opts),
  };

  async function resolveTarget(reference: string, jobName?: string): Promise<Target> {
    const ref = reference.trim().toLowerCase();
    const slash = ref.indexOf('/');
    const id = slash > 0 ? ref.slice(0, slash) : ref;
    const name = slash > 0 ? reference.trim().slice(slash + 1) : jobName;
    if (!WHOLE_ID.test(id))
      throw new InputError(
        `"${reference}" is not a whole pipeline or job id`,
        'through the API (SOLSTICE_API_URL) give whole ids, as `solstice pipelines` and `solstice jobs` print them',
      );
    const p = await pipeline(id);
    if (p) {
      if (name === undefined) return { kind: 'pipeline', pipeline: strip(p)! };
      const found = p.jobs.find((j) => j.name === name) ?? onlyInstance(p.jobs, name);
      if (!found)
        throw new InputError(
          `pipeline ${p.id} has no job "${name}"`,
          `its jobs: ${p.jobs.map((j) => j.name).join(', ')}`,
        );
      if (!found.jobId)
        throw new InputError(`job ${found.name} of pipeline ${p.id} did not run: ${found.state}`);
      const j = await job(found.jobId);
      if (!j) throw new NotFoundError(`job ${found.jobId} (${found.name}) is not recorded yet`);
      return { kind: 'job', job: jobRecord(j)!, name: found.name };
    }
    if (name !== undefined) throw new InputError(`no pipeline ${id}`);
    const j = await job(id);
    if (!j)
      throw new InputError(
        `no pipeline or job ${id}`,
        '`solstice pipelines` and `solstice jobs` list recent ones',
      );
    return { kind: 'job', job: jobRecord(j)!, ...(j.name ? { name: j.name } : {}) };
  }

  return {
    api,
    source,
    resolveTarget,
    resolveJob: async (reference) => {
      const t = await resolveTarget(reference);
      if (t.kind === 'job') return t.job;
      throw new InputError(
        `${reference} is a pipeline; name one of its jobs`,
        `e.g. ${t.pipeline.id}/<job name>`,
      );
    },
  };
}

function onlyInstance(jobs: PipelineJobRecord[], name: string): PipelineJobRecord | undefined {
  const instances = jobs.filter((j) => j.name.startsWith(`${name}[`));
  return instances.length === 1 ? instances[0] : undefined;
}

function strip(p: PipelineView | undefined): PipelineRecord | undefined {
  if (!p) return undefined;
  const { jobs: _jobs, ...rest } = p;
  return rest;
}

function jobRecord(j: JobView | undefined): JobRecord | undefined {
  if (!j) return undefined;
  const { name: _n, logLines: _l, steps: _s, lostAttempts: _a, queuePosition: _q, pipeline: _p, ...rest } = j;
  return rest;
}

async function* readRemoteLog(
  api: ApiClient,
  jobId: string,
  opts: { follow: boolean; pollMs?: number },
): AsyncGenerator<LogLineRecord[]> {
  let after = 0;
  for (;;) {
    const window = await (opts.follow
      ? api.find<{ lines: LogLineRecord[]; state: string }>(`/v1/jobs/${jobId}/log?after=${after}&limit=5000`)
      : api.request<{ lines: LogLineRecord[]; state: string }>(
          'GET',
          `/v1/jobs/${jobId}/log?after=${after}&limit=5000`,
        ));
    // Not recorded yet (a pipeline names its job a moment before the job records itself).
    if (window) {
      if (window.lines.length > 0) {
        yield window.lines;
        after = window.lines[window.lines.length - 1].seq;
      }
      if (window.lines.length === 5000) continue;
      // The state is read before the lines: final then means this window was the last.
      if (!opts.follow || FINAL.includes(window.state)) return;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
  }
}
