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
