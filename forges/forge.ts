/**
 * What every forge folder shares: the forge names, the status update the workflow sends, and
 * the one HTTP call the status reporters make (so every forge's errors say the same things
 * and carry whether a retry can help).
 */
import { forgeRepoOf, repoUrlWithoutCredentials, type ForgeRepo } from '../model/repo-url';
import type { PipelineEvent } from '../model/domain';

export type Forge = 'forgejo' | 'github';
export type ReportedState = 'pending' | 'success' | 'failure' | 'error' | 'cancelled' | 'skipped';

export interface StatusUpdate {
  forge: Forge;
  repoUrl: string;
  commitSha: string;
  /** Job name, shown as `solstice/<job>`; absent for the pipeline's own status (`solstice`). */
  job?: string;
  /** The job's run, linked from the status; absent before the job started. */
  jobId?: string;
  /** The pipeline, so a pipeline-level check run has an identity of its own on GitHub. */
  pipelineId?: string;
  /** Pull request runs report under contexts of their own (see statusContext). */
  event?: PipelineEvent;
  state: ReportedState;
  description: string;
  /** Longer text for GitHub's check run summary (markdown). */
  summary?: string;
  /** GitHub: the check run created at pending, to complete at the end. */
  checkRunId?: number;
}

export interface ReportResult {
  checkRunId?: number;
  skipped?: string;
}

export interface ForgeStatusConfig {
  forgejoToken?: string;
  /** Override of the Forgejo/Gitea API base; default: `<repo origin>/api/v1`. */
  forgejoApiUrl?: string;
  githubAppId?: string;
  githubPrivateKey?: string;
  githubApiUrl: string;
  /** Base of the job page linked from the forge (`<publicUrl>/jobs/<job id>`). */
  publicUrl?: string;
}

export interface StatusReporter {
  /** Reports one state; returns the GitHub check run id to pass to the next report. */
  report(u: StatusUpdate): Promise<ReportResult>;
}

export class ForgeApiError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'ForgeApiError';
  }
}

/** `https://forge.example/owner/repo.git`, `git@github.com:owner/repo.git` → origin, owner, repo. */
export function parseRepoUrl(raw: string): ForgeRepo {
  const r = forgeRepoOf(raw);
  if (!r)
    throw new ForgeApiError(
      `cannot tell the forge's owner/repository from "${repoUrlWithoutCredentials(raw)}"`,
      undefined,
      false,
    );
  return r;
}

export type Fetch = typeof fetch;

/** The job page a forge links to, when a public URL is configured and the job has started. */
export function jobTargetUrl(cfg: ForgeStatusConfig, jobId: string | undefined): string | undefined {
  return cfg.publicUrl && jobId ? `${cfg.publicUrl.replace(/\/$/, '')}/jobs/${jobId}` : undefined;
}

/**
 * The status context: `solstice/<job>` for pushes (and tags, manual runs), `solstice/pr/<job>`
 * for pull request runs, so a commit pushed and then opened as a PR shows both runs instead
 * of whichever finished last; `solstice` and `solstice/pr` for the pipeline's own status.
 */
export function statusContext(u: Pick<StatusUpdate, 'job' | 'event'>): string {
  const base = u.event === 'pull_request' ? 'solstice/pr' : 'solstice';
  return u.job ? `${base}/${u.job}` : base;
}

/** One JSON call to a forge's API; failures become ForgeApiError with `retryable` set. */
export async function forgeCall(
  fetchImpl: Fetch,
  method: string,
  url: string,
  auth: string,
  body?: unknown,
  accept = 'application/json',
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetchImpl(url, {
      method,
      headers: {
        authorization: auth,
        accept,
        'user-agent': 'solstice-ci',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new ForgeApiError(`${method} ${new URL(url).pathname}: ${(err as Error).message}`, undefined, true);
  }
  const text = await res.text();
  if (!res.ok) {
    const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
    // The body may echo our request; keep only the forge's message.
    let detail: string;
    try {
      detail = String((JSON.parse(text) as { message?: unknown }).message ?? '');
    } catch {
      detail = '';
    }
    throw new ForgeApiError(
      `${method} ${new URL(url).pathname} answered ${res.status}${detail ? `: ${detail.slice(0, 200)}` : ''}`,
      res.status,
      retryable,
    );
  }
  return text ? (JSON.parse(text) as unknown) : undefined;
}

/** Case-insensitive header lookup on Node's lower-cased header object. */
export type Headers = Record<string, string | string[] | undefined>;
export function header(h: Headers, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export interface DeliveryMeta {
  event: string | undefined;
  deliveryId: string | undefined;
  signature: string | undefined;
  /** Which header the signature came from, for error messages. */
  signatureHeader: string;
}

/** What one forge's webhooks look like on the wire: headers and the signature's spelling. */
export interface WebhookDialect {
  deliveryMeta(h: Headers): DeliveryMeta;
  /** The hex digest inside the signature header, or undefined when it is malformed. */
  signatureHex(signature: string): string | undefined;
  /** How a malformed signature is described. */
  signatureShape: string;
  /** The event header(s), for "no event header" errors. */
  eventHeaders: string;
}
