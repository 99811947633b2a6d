/**
 * GitHub: the Checks API as a GitHub App. An RS256 JWT signed with the App's private key
 * buys an installation token (cached until shortly before it expires); a check run is
 * created at pending and completed at the end with a summary.
 */
import { createSign } from 'node:crypto';
import { forgeCall, jobTargetUrl, parseRepoUrl, statusContext } from '../forge';
import type { Fetch, ForgeStatusConfig, ReportedState, ReportResult, StatusUpdate } from '../forge';

const GITHUB_JSON = 'application/vnd.github+json';

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
      const inst = (await forgeCall(
        this.fetchImpl,
        'GET',
        `${this.apiUrl}/repos/${owner}/${repo}/installation`,
        `Bearer ${jwt}`,
        undefined,
        GITHUB_JSON,
      )) as { id: number };
      id = inst.id;
      this.installations.set(key, id);
    }
    const cached = this.tokens.get(id);
    if (cached && cached.expiresAt - 60_000 > Date.now()) return cached.token;
    const jwt = githubAppJwt(this.appId, this.privateKey);
    const t = (await forgeCall(
      this.fetchImpl,
      'POST',
      `${this.apiUrl}/app/installations/${id}/access_tokens`,
      `Bearer ${jwt}`,
      {},
      GITHUB_JSON,
    )) as { token: string; expires_at: string };
    this.tokens.set(id, { token: t.token, expiresAt: Date.parse(t.expires_at) });
    return t.token;
  }
}

const GITHUB_CONCLUSION: Record<Exclude<ReportedState, 'pending'>, string> = {
  success: 'success',
  failure: 'failure',
  // Checks have no "error": the run did not produce a verdict, which GitHub calls failure.
  error: 'failure',
  cancelled: 'cancelled',
  skipped: 'skipped',
};

/** Reports through check runs; `auth` is undefined when no GitHub App is configured. */
export async function reportGithubCheck(
  cfg: ForgeStatusConfig,
  auth: GithubAppAuth | undefined,
  u: StatusUpdate,
  fetchImpl: Fetch,
): Promise<ReportResult> {
  const { owner, repo } = parseRepoUrl(u.repoUrl);
  if (!auth) return { skipped: 'no GitHub App configured' };
  const context = statusContext(u);
  // The run's identity on GitHub: the job, or the pipeline for its own check run.
  const externalId = u.jobId ?? `pipeline-${u.pipelineId ?? ''}`;
  const token = await auth.tokenFor(owner, repo);
  const api = cfg.githubApiUrl.replace(/\/$/, '');
  const call = (method: string, path: string, body?: unknown) =>
    forgeCall(
      fetchImpl,
      method,
      `${api}/repos/${owner}/${repo}${path}`,
      `Bearer ${token}`,
      body,
      GITHUB_JSON,
    );
  const output = {
    title: u.description.slice(0, 255),
    summary: (u.summary ?? u.description).slice(0, 65_535),
  };
  // A create that timed out may have happened: a retry finds that run instead of adding one.
  const existing = async (): Promise<number | undefined> => {
    const q = `check_name=${encodeURIComponent(context)}&filter=all&per_page=100`;
    const list = (await call('GET', `/commits/${u.commitSha}/check-runs?${q}`)) as {
      check_runs?: { id: number; external_id?: string | null }[];
    };
    return list.check_runs?.find((r) => r.external_id === externalId)?.id;
  };
  const create = async (fields: Record<string, unknown>): Promise<number> => {
    const run = (await call('POST', '/check-runs', {
      name: context,
      head_sha: u.commitSha,
      external_id: externalId,
      details_url: jobTargetUrl(cfg, u.jobId),
      ...fields,
    })) as { id: number };
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
    await call('PATCH', `/check-runs/${runId}`, completed);
    return { checkRunId: runId };
  }
  // The pending report never got through: create the run completed.
  return { checkRunId: await create(completed) };
}
