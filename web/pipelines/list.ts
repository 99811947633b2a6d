/**
 * The pipelines list's query string and paging. Filters are checked where they are read: an
 * unknown parameter or a malformed value is a 400 that says what is accepted, never ignored.
 * Runs the visitor may not read are left out of the page; a page scans a bounded number of rows.
 */
import { InputError } from '../../platform/errors';
import type { PipelineRecord, PipelineStore } from '../../storage/pipeline-store';

export interface ListQuery {
  repo?: string;
  /** A repository's own list: `/owner/name`. */
  repoPath?: string;
  branch?: string;
  state?: string;
  before?: Date;
}

const STATES = ['running', 'success', 'failure', 'error', 'cancelled'];
const KEYS = ['repo', 'branch', 'state', 'before'];
const NAME = /^[A-Za-z0-9._-]{1,100}$/;

/** Pipelines shown on a page, and how many rows one page reads at most to find them. */
export const PAGE_SIZE = 50;
const SCAN_BATCH = 200;
const SCAN_MAX = 2000;

/** `/owner/name` of a repository's pages; both parts as forges allow them. */
export function repoPipelineFilter(owner: string, repo: string): string {
  if (!NAME.test(owner) || !NAME.test(repo) || repo === '.' || repo === '..')
    throw new InputError(`"${owner}/${repo}" is not an owner/repository name`);
  return `/${owner}/${repo}`;
}

export function parseListQuery(raw: unknown, fixed: { repoSuffix?: string }): ListQuery {
  const q = (raw ?? {}) as Record<string, unknown>;
  const out: ListQuery = fixed.repoSuffix ? { repoPath: fixed.repoSuffix } : {};
  for (const [key, value] of Object.entries(q)) {
    if (!KEYS.includes(key) || (key === 'repo' && fixed.repoSuffix))
      throw new InputError(`unknown filter "${key.slice(0, 50)}"`, `filters: ${KEYS.join(', ')}`);
    if (typeof value !== 'string' || value.length > 200)
      throw new InputError(`?${key}= takes one value of at most 200 characters`);
    if (value === '') continue;
    if (key === 'state' && !STATES.includes(value))
      throw new InputError(`?state= is one of ${STATES.join(', ')}, got "${value.slice(0, 50)}"`);
    if (key === 'before') {
      const d = new Date(value);
      if (Number.isNaN(d.getTime()))
        throw new InputError(`?before= is a time (ISO 8601), got "${value.slice(0, 50)}"`);
      out.before = d;
    } else out[key as 'repo' | 'branch' | 'state'] = value;
  }
  return out;
}

/**
 * One page of the pipelines this visitor may read, and the cursor of the next (older) page
 * when there may be more. `readable` is asked once per repository.
 */
export async function findPipelines(
  store: PipelineStore,
  q: ListQuery,
  readable: (repoUrl: string) => Promise<boolean>,
): Promise<{ pipelines: PipelineRecord[]; older?: string }> {
  const verdicts = new Map<string, Promise<boolean>>();
  const shown: PipelineRecord[] = [];
  let before = q.before;
  for (let scanned = 0; scanned < SCAN_MAX; scanned += SCAN_BATCH) {
    const rows = await store.findPipelines(
      {
        ...(q.repo ? { repoContains: q.repo } : {}),
        ...(q.repoPath ? { repoPath: q.repoPath } : {}),
        ...(q.branch ? { branch: q.branch } : {}),
        ...(q.state ? { state: q.state } : {}),
        ...(before ? { before } : {}),
      },
      SCAN_BATCH,
    );
    for (const p of rows) {
      let v = verdicts.get(p.repoUrl);
      if (!v) verdicts.set(p.repoUrl, (v = readable(p.repoUrl)));
      if (await v) shown.push(p);
      if (shown.length === PAGE_SIZE) return { pipelines: shown, older: p.createdAt.toISOString() };
    }
    if (rows.length < SCAN_BATCH) return { pipelines: shown };
    before = rows[rows.length - 1].createdAt;
  }
  return { pipelines: shown, ...(before ? { older: before.toISOString() } : {}) };
}
