/**
 * What job rows and pipeline rows have in common: the commit a run is for, listing the newest,
 * and lookup by a unique id prefix (as git does for commits) for `solstice status <id>` and friends.
 */
import type { Db } from './db';

/** A run's identity and which commit of which repository it is for, and who asked. */
export function runColumns(
  id: string,
  workflowId: string,
  input: { source: string; repoUrl: string; commitSha: string; ref?: string },
) {
  const { source, repoUrl, commitSha } = input;
  return { id, workflowId, source, repoUrl, commitSha, ref: input.ref ?? null };
}

/** The newest `limit` runs, newest first: how `solstice jobs` and `solstice pipelines` list them. */
export function newestFirst(limit: number): { orderBy: { createdAt: 'desc' }; take: number } {
  return { orderBy: { createdAt: 'desc' }, take: limit };
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

export function runWhere<S extends string>(filter: RunFilter<S>) {
  const ends = (filter.repos ?? []).flatMap((r) => [`/${r}`, `/${r}.git`]);
  return {
    ...(filter.repo ? { repoUrl: { contains: filter.repo } } : {}),
    ...(filter.branch ? { ref: { in: [filter.branch, `refs/heads/${filter.branch}`] } } : {}),
    ...(filter.state ? { state: filter.state } : {}),
    ...(filter.repos
      ? { OR: ends.map((e) => ({ repoUrl: { endsWith: e, mode: 'insensitive' as const } })) }
      : {}),
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
  const like = `${prefix}%`;
  const rows = (
    table === 'jobs'
      ? await db.$queryRaw`SELECT id::text AS id FROM jobs WHERE id::text LIKE ${like} LIMIT 2`
      : await db.$queryRaw`SELECT id::text AS id FROM pipelines WHERE id::text LIKE ${like} LIMIT 2`
  ) as { id: string }[];
  return rows.map((r) => r.id);
}
