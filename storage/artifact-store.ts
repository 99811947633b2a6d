/**
 * A job's artifacts: the rows that say what was uploaded (path, size, SHA-256) and where the
 * bytes live in the blob store. The log service writes them; the CLI and the job page read them.
 */
import { validateKey } from './blob-store';
import { selectRows, type Db } from './db';
import { InputError } from '../platform/errors';

export interface ArtifactRecord {
  path: string;
  size: number;
  sha256: string;
  createdAt: Date;
}

/** ArtifactRecord's fields as a select list (see selectRows for why reads are SQL); size is int8. */
const ARTIFACT_COLUMNS = `path, size::text AS size, sha256, created_at AS "createdAt"`;
type ArtifactRow = Omit<ArtifactRecord, 'size'> & { size: string };
const artifactRecord = (r: ArtifactRow): ArtifactRecord => ({ ...r, size: Number(r.size) });

export function artifactsPrefix(jobId: string): string {
  return `jobs/${jobId}/artifacts`;
}

/**
 * The artifact's path as stored: relative, slash-separated, without `.`/`..` parts, percent
 * signs that could decode to something else, or control characters. Throws InputError.
 */
export function validateArtifactPath(p: string): string {
  if (p.length > 1024) throw new InputError(`artifact path is longer than 1024 characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p))
    throw new InputError(`artifact path ${JSON.stringify(p)} contains control characters`);
  try {
    validateKey(p);
  } catch (err) {
    throw new InputError(
      `artifact path ${JSON.stringify(p)} is not allowed: it must be relative to the checkout, use "/" and contain no "." or ".." parts`,
      undefined,
      { cause: err },
    );
  }
  return p;
}

export function artifactBlobKey(jobId: string, artifactPath: string): string {
  return `${artifactsPrefix(jobId)}/${validateArtifactPath(artifactPath)}`;
}

export class ArtifactStore {
  constructor(private readonly db: Db) {}

  /** Records an uploaded file; a repeated upload of the same path (a runner retrying) replaces it. */
  async record(jobId: string, a: { path: string; size: number; sha256: string }): Promise<void> {
    await this.db.artifact.upsert({
      where: { jobId_path: { jobId, path: a.path } },
      create: { jobId, path: a.path, size: BigInt(a.size), sha256: a.sha256 },
      update: { size: BigInt(a.size), sha256: a.sha256, createdAt: new Date() },
    });
  }

  /** In path order; `limit` bounds what a page reads for a job with very many artifacts. */
  async list(jobId: string, limit?: number): Promise<ArtifactRecord[]> {
    const rows = await selectRows<ArtifactRow>(
      this.db,
      `SELECT ${ARTIFACT_COLUMNS} FROM artifacts WHERE job_id = $1::uuid ORDER BY path
       ${limit !== undefined ? 'LIMIT $2' : ''}`,
      limit !== undefined ? [jobId, limit] : [jobId],
    );
    return rows.map(artifactRecord);
  }

  async count(jobId: string): Promise<number> {
    const [{ n }] = await selectRows<{ n: number }>(
      this.db,
      'SELECT count(*)::int AS n FROM artifacts WHERE job_id = $1::uuid',
      [jobId],
    );
    return n;
  }

  async get(jobId: string, artifactPath: string): Promise<ArtifactRecord | undefined> {
    const [r] = await selectRows<ArtifactRow>(
      this.db,
      `SELECT ${ARTIFACT_COLUMNS} FROM artifacts WHERE job_id = $1::uuid AND path = $2`,
      [jobId, artifactPath],
    );
    return r ? artifactRecord(r) : undefined;
  }

  /** Bytes the job's artifacts take, not counting `exceptPath` (which an upload would replace). */
  async totalSize(jobId: string, exceptPath?: string): Promise<number> {
    const agg = await this.db.artifact.aggregate({
      where: { jobId, ...(exceptPath !== undefined ? { path: { not: exceptPath } } : {}) },
      _sum: { size: true },
    });
    return Number(agg._sum.size ?? 0n);
  }
}
