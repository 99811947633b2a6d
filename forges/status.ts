/**
 * Reporting a job's state back to the forge, so the commit and the pull request show it:
 *  - Forgejo / Gitea: the commit status API (`POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`,
 *    context `solstice/<job>`, states pending → success / failure / error), with a token.
 *  - GitHub: the Checks API as a GitHub App. An RS256 JWT signed with the App's private key
 *    buys an installation token (cached until shortly before it expires); a check run is
 *    created at pending and completed at the end with a summary.
 *
 * Credentials come from settings (inline or `file:<path>`) and never reach logs or errors.
 * Errors carry whether retrying can help (5xx, 429, network) or not (other 4xx): the
 * activity wrapper turns them into retryable or non-retryable failures, and the workflow
 * records a failure to report without letting it change the job's result.
 */
import { createSign } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';

export type ForgeKind = 'forgejo' | 'github';
export type ReportedState = 'pending' | 'success' | 'failure' | 'error' | 'cancelled';

export interface StatusUpdate {
  forge: ForgeKind;
  repoUrl: string;
  commitSha: string;
  /** Job name, shown as `solstice/<job>`. */
  job: string;
  jobId: string;
  state: ReportedState;
  description: string;
  /** Longer text for GitHub's check run summary (markdown). */
  summary?: string;
  /** GitHub: the check run created at pending, to complete at the end. */
  checkRunId?: number;
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
export function parseRepoUrl(raw: string): { origin: string; owner: string; repo: string } {
  const scp = /^(?:[^@/:]+@)?([^/:]+):(?!\/)([^/]+)\/(.+?)(?:\.git)?\/?$/.exec(raw);
  if (scp) return { origin: `https://${scp[1]}`, owner: scp[2], repo: scp[3] };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ForgeApiError(`cannot tell the forge repository from "${raw}"`, undefined, false);
  }
  const parts = u.pathname
    .replace(/\.git$/, '')
    .split('/')
    .filter(Boolean);
  if (parts.length < 2 || u.protocol === 'file:')
    throw new ForgeApiError(`cannot tell owner/repository from "${raw}"`, undefined, false);
  const origin = u.protocol === 'ssh:' ? `https://${u.hostname}` : u.origin;
  // Sub-path installs (https://host/forgejo/owner/repo): owner and repo are the last two parts.
  const prefix = parts.length > 2 ? `/${parts.slice(0, -2).join('/')}` : '';
  return { origin: `${origin}${prefix}`, owner: parts[parts.length - 2], repo: parts[parts.length - 1] };
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** A GitHub App JWT (RS256), valid 9 minutes from a minute ago (clock skew). */
export function githubAppJwt(
  appId: string,
  privateKeyPem: string,
  nowS = Math.floor(Date.now() / 1000),
): string {
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ iat: nowS - 60, exp: nowS + 9 * 60, iss: appId }));
  const signer = createSign('RSA-SHA256');
  signer.update(`${header}.${payload}`);
  return `${header}.${payload}.${b64url(signer.sign(privateKeyPem))}`;
}

type Fetch = typeof fetch;

async function call(
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

/** Installation tokens by repository, cached until a minute before they expire. */
export class GithubAppAuth {
  private readonly installations = new Map<string, number>();
  private readonly tokens = new Map<number, { token: string; expiresAt: number }>();

  constructor(
    private readonly appId: string,
    private readonly privateKey: string,
    private readonly apiUrl: string,
    private readonly fetchImpl: Fetch = fetch,
  ) {}

  async tokenFor(owner: string, repo: string): Promise<string> {
    const key = `${owner}/${repo}`;
    let id = this.installations.get(key);
    if (id === undefined) {
      const jwt = githubAppJwt(this.appId, this.privateKey);
      const inst = (await call(
        this.fetchImpl,
        'GET',
        `${this.apiUrl}/repos/${owner}/${repo}/installation`,
        `Bearer ${jwt}`,
        undefined,
        'application/vnd.github+json',
      )) as { id: number };
      id = inst.id;
      this.installations.set(key, id);
    }
    const cached = this.tokens.get(id);
    if (cached && cached.expiresAt - 60_000 > Date.now()) return cached.token;
    const jwt = githubAppJwt(this.appId, this.privateKey);
    const t = (await call(
      this.fetchImpl,
      'POST',
      `${this.apiUrl}/app/installations/${id}/access_tokens`,
      `Bearer ${jwt}`,
      {},
      'application/vnd.github+json',
    )) as { token: string; expires_at: string };
    this.tokens.set(id, { token: t.token, expiresAt: Date.parse(t.expires_at) });
    return t.token;
  }
}

const FORGEJO_STATE: Record<ReportedState, string> = {
  pending: 'pending',
  success: 'success',
  failure: 'failure',
  error: 'error',
  // Commit statuses know no "cancelled": nothing was decided about the commit.
  cancelled: 'error',
};

const GITHUB_CONCLUSION: Record<Exclude<ReportedState, 'pending'>, string> = {
  success: 'success',
  failure: 'failure',
  // Checks have no "error": the run did not produce a verdict, which GitHub calls failure.
  error: 'failure',
  cancelled: 'cancelled',
};

export interface StatusReporter {
  /** Reports one state; returns the GitHub check run id to pass to the next report. */
  report(u: StatusUpdate): Promise<{ checkRunId?: number; skipped?: string }>;
}

export function createStatusReporter(cfg: ForgeStatusConfig, fetchImpl: Fetch = fetch): StatusReporter {
  const github =
    cfg.githubAppId && cfg.githubPrivateKey
      ? new GithubAppAuth(cfg.githubAppId, cfg.githubPrivateKey, cfg.githubApiUrl, fetchImpl)
      : undefined;
  const targetUrl = (jobId: string) =>
    cfg.publicUrl ? `${cfg.publicUrl.replace(/\/$/, '')}/jobs/${jobId}` : undefined;

  return {
    async report(u) {
      const { origin, owner, repo } = parseRepoUrl(u.repoUrl);
      const context = `solstice/${u.job}`;
      if (u.forge === 'forgejo') {
        if (!cfg.forgejoToken) return { skipped: 'no Forgejo/Gitea token configured' };
        const api = (cfg.forgejoApiUrl ?? `${origin}/api/v1`).replace(/\/$/, '');
        await call(
          fetchImpl,
          'POST',
          `${api}/repos/${owner}/${repo}/statuses/${u.commitSha}`,
          `token ${cfg.forgejoToken}`,
          {
            state: FORGEJO_STATE[u.state],
            context,
            description: u.description.slice(0, 255),
            target_url: targetUrl(u.jobId),
          },
        );
        return {};
      }
      if (!github) return { skipped: 'no GitHub App configured' };
      const token = await github.tokenFor(owner, repo);
      const api = cfg.githubApiUrl.replace(/\/$/, '');
      const output = {
        title: u.description.slice(0, 255),
        summary: (u.summary ?? u.description).slice(0, 65_535),
      };
      // A create that timed out may have happened: a retry finds that run instead of adding one.
      const existing = async (): Promise<number | undefined> => {
        const q = `check_name=${encodeURIComponent(context)}&filter=all&per_page=100`;
        const list = (await call(
          fetchImpl,
          'GET',
          `${api}/repos/${owner}/${repo}/commits/${u.commitSha}/check-runs?${q}`,
          `Bearer ${token}`,
          undefined,
          'application/vnd.github+json',
        )) as { check_runs?: { id: number; external_id?: string | null }[] };
        return list.check_runs?.find((r) => r.external_id === u.jobId)?.id;
      };
      const create = async (fields: Record<string, unknown>): Promise<number> => {
        const run = (await call(
          fetchImpl,
          'POST',
          `${api}/repos/${owner}/${repo}/check-runs`,
          `Bearer ${token}`,
          {
            name: context,
            head_sha: u.commitSha,
            external_id: u.jobId,
            details_url: targetUrl(u.jobId),
            ...fields,
          },
          'application/vnd.github+json',
        )) as { id: number };
        return run.id;
      };
      if (u.state === 'pending') {
        const found = await existing();
        if (found !== undefined) return { checkRunId: found };
        return { checkRunId: await create({ status: 'in_progress', output }) };
      }
      const completed = {
        status: 'completed',
        conclusion: GITHUB_CONCLUSION[u.state],
        completed_at: new Date().toISOString(),
        output,
      };
      const runId = u.checkRunId ?? (await existing());
      if (runId !== undefined) {
        await call(
          fetchImpl,
          'PATCH',
          `${api}/repos/${owner}/${repo}/check-runs/${runId}`,
          `Bearer ${token}`,
          completed,
          'application/vnd.github+json',
        );
        return { checkRunId: runId };
      }
      // The pending report never got through: create the run completed.
      return { checkRunId: await create(completed) };
    },
  };
}

/** The activity: forge errors become Temporal failures that are retried only when that can help. */
export function createForgeStatusActivities(reporter: StatusReporter) {
  return {
    async reportForgeStatus(u: StatusUpdate): Promise<{ checkRunId?: number; skipped?: string }> {
      try {
        return await reporter.report(u);
      } catch (err) {
        if (err instanceof ForgeApiError && !err.retryable)
          throw ApplicationFailure.nonRetryable(err.message, 'ForgeRejectedStatus');
        throw ApplicationFailure.retryable(
          err instanceof Error ? err.message : String(err),
          'ForgeUnavailable',
        );
      }
    },
  };
}
