/**
 * What job rows and pipeline rows have in common: the commit a run is for, listing the newest,
 * and lookup by a unique id prefix (as git does for commits) for `solstice status <id>` and friends.
 */
import { selectRows, type Db } from './db';

/** A run's identity and which commit of which repository it is for, and who asked. */
export function runColumns(
  id: string,
  workflowId: string,
  input: { source: string; repoUrl: string; commitSha: string; ref?: string },
) {
  const { source, repoUrl, commitSha } = input;
  return { id, workflowId, source, repoUrl, commitSha, ref: input.ref ?? null };
}

/**
 * Which runs a list shows: `repo` matches part of the repository URL, `branch` the ref (`main`
 * or `refs/heads/main`), `repos` (owner/name entries, as API tokens carry) limits to those
 * repositories, matched at the end of the URL.
 */
export interface RunFilter<S extends string> {
  repo?: string;
  branch?: string;
  state?: S;
  repos?: string[];
}

/**
 * The newest runs of `table` that `filter` lets through, `offset` skipped, as SQL for selectRows.
 * `columns` is the table's select list; the table is one of two literals, never input.
 */
export function newestRuns<S extends string>(
  table: 'jobs' | 'pipelines',
  columns: string,
  filter: RunFilter<S>,
  limit: number,
  offset = 0,
): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const param = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const where: string[] = [];
  if (filter.repo) where.push(`strpos(repo_url, ${param(filter.repo)}::text) > 0`);
  if (filter.branch)
    where.push(`ref = ANY(${param([filter.branch, `refs/heads/${filter.branch}`])}::text[])`);
  if (filter.state) where.push(`state::text = ${param(filter.state)}::text`);
  if (filter.repos) {
    const ends = filter.repos.flatMap((r) => [`/${r}`, `/${r}.git`].map((e) => e.toLowerCase()));
    // No repositories lets nothing through.
    where.push(
      ends.length === 0
        ? 'FALSE'
        : `EXISTS (SELECT 1 FROM unnest(${param(ends)}::text[]) AS e WHERE right(lower(repo_url), length(e)) = e)`,
    );
  }
  return {
    text: `SELECT ${columns} FROM ${table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC LIMIT ${param(limit)} OFFSET ${param(offset)}`,
    values,
  };
}

/** What an id prefix may look like: part of a UUID, at least 4 characters. */
export const ID_PREFIX = /^[0-9a-f-]{4,36}$/;

/**
 * Up to two ids of `table` that start with `prefix`: one is a match, two say it is ambiguous.
 * Raw SQL because Prisma offers no `startsWith` on UUID columns.
 */
export async function idsStartingWith(
  db: Db,
  table: 'jobs' | 'pipelines',
  prefix: string,
): Promise<string[]> {
  // The table is one of two literals, never input.
  const rows = await selectRows<{ id: string }>(
    db,
    `SELECT id::text AS id FROM ${table} WHERE id::text LIKE $1 LIMIT 2`,
    [`${prefix}%`],
  );
  return rows.map((r) => r.id);
}
