/**
 * Queries about pipelines and their jobs, shared by activities and the CLI. Writes are
 * idempotent (Temporal retries activities).
 */
import { selectRows, type Db } from './db';
import { InputError, NotFoundError } from '../platform/errors';
import type { PipelineInput, PipelineJobState, PipelineState } from '../model/domain';
import { runColumns, ID_PREFIX, idsStartingWith, newestRuns, type RunFilter } from './run-rows';
import { repoDisplayName } from '../model/repo-url';

export interface PipelineRecord {
  id: string;
  workflowId: string;
  source: string;
  event: string;
  repoUrl: string;
  commitSha: string;
  ref: string | null;
  state: PipelineState;
  message: string | null;
  rerunOf: string | null;
  /** The repository's run number: `#12`, counted per repositoryUrl from 1. */
  number: number;
  createdAt: Date;
  finishedAt: Date | null;
}

export interface PipelineJobRecord {
  name: string;
  needs: string[];
  state: PipelineJobState;
  jobId: string | null;
  message: string | null;
  position: number;
}

/** `app#12`: how lists, status and the job page name a pipeline; `<repo>#<number>` takes it back. */
export function pipelineLabel(p: Pick<PipelineRecord, 'repoUrl' | 'number'>): string {
  return `${repoDisplayName(p.repoUrl)}#${p.number}`;
}

/** PipelineRecord's and PipelineJobRecord's fields, as select lists (see selectRows for why reads are SQL). */
const PIPELINE_COLUMNS = `id::text AS id, workflow_id AS "workflowId", source, event, repo_url AS "repoUrl",
  commit_sha AS "commitSha", ref, state, message, rerun_of::text AS "rerunOf", number,
  created_at AS "createdAt", finished_at AS "finishedAt"`;
const PIPELINE_JOB_COLUMNS = `name, needs, state, job_id::text AS "jobId", message, position`;

export class PipelineStore {
  constructor(private readonly db: Db) {}

  /**
   * The row takes its repository's next number on insert (a database trigger, so concurrent
   * pipelines of one repository get distinct numbers); a repeated call keeps the first one.
   */
  async recordPipeline(input: PipelineInput, workflowId: string): Promise<void> {
    await this.db.pipeline.upsert({
      where: { id: input.pipelineId },
      create: {
        ...runColumns(input.pipelineId, workflowId, input),
        event: input.event,
        rerunOf: input.rerunOf ?? null,
      },
      update: {},
    });
  }

  /** Records the planned jobs; a repeated call leaves the rows as they are. */
  async recordJobs(
    pipelineId: string,
    jobs: { name: string; needs: string[]; state: PipelineJobState; jobId?: string; message?: string }[],
  ): Promise<void> {
    await this.db.pipelineJob.createMany({
      data: jobs.map((j, position) => ({
        pipelineId,
        name: j.name,
        needs: j.needs,
        state: j.state,
        jobId: j.jobId ?? null,
        message: j.message ?? null,
        position,
      })),
      skipDuplicates: true,
    });
  }

  async updateJob(
    pipelineId: string,
    name: string,
    change: { state: PipelineJobState; jobId?: string; message?: string },
  ): Promise<void> {
    await this.db.pipelineJob.update({
      where: { pipelineId_name: { pipelineId, name } },
      data: {
        state: change.state,
        ...(change.jobId ? { jobId: change.jobId } : {}),
        ...(change.message !== undefined ? { message: change.message } : {}),
      },
    });
  }

  /** Without a message, one noted earlier (e.g. by noteSuperseded) stays. */
  async finalize(pipelineId: string, state: PipelineState, message?: string): Promise<void> {
    await this.db.pipeline.update({
      where: { id: pipelineId },
      data: { state, ...(message !== undefined ? { message } : {}), finishedAt: new Date() },
    });
  }

  /** Says why the pipelines about to be cancelled were cancelled. */
  async noteSuperseded(workflowIds: string[], byPipelineId: string): Promise<void> {
    await this.db.pipeline.updateMany({
      where: { workflowId: { in: workflowIds }, state: 'running' },
      data: { message: `superseded by pipeline ${byPipelineId}, a newer push to the branch` },
    });
  }

  /**
   * Workflow ids of the still running push pipelines of a branch that started before this one
   * (manual runs and reruns are asked for by a person and are left alone).
   */
  async supersededBy(pipelineId: string): Promise<string[]> {
    const self = await this.db.pipeline.findUnique({ where: { id: pipelineId } });
    if (!self?.ref) return [];
    const older = await this.db.pipeline.findMany({
      where: {
        repoUrl: self.repoUrl,
        ref: self.ref,
        event: 'push',
        rerunOf: null,
        state: 'running',
        id: { not: self.id },
        createdAt: { lte: self.createdAt },
      },
      select: { workflowId: true },
    });
    return older.map((p) => p.workflowId);
  }

  async getPipeline(id: string): Promise<PipelineRecord | undefined> {
    const [p] = await selectRows<PipelineRecord>(
      this.db,
      `SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE id = $1::uuid`,
      [id],
    );
    return p;
  }

  /**
   * Pipelines newest first, filtered: `repoContains` part of the repository URL, `repoPath` the
   * end of it (`/owner/name`, with or without `.git`), `branch` the ref (`main` or
   * `refs/heads/main`), `before` created earlier than this (the next page's cursor).
   */
  async findPipelines(
    f: { repoContains?: string; repoPath?: string; branch?: string; state?: string; before?: Date },
    take: number,
  ): Promise<PipelineRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const param = (v: unknown) => {
      values.push(v);
      return `$${values.length}`;
    };
    if (f.repoContains) where.push(`strpos(lower(repo_url), lower(${param(f.repoContains)}::text)) > 0`);
    if (f.repoPath) {
      const tail = `${param(f.repoPath.toLowerCase())}::text`;
      const tailGit = `${param(`${f.repoPath.toLowerCase()}.git`)}::text`;
      where.push(
        `(right(lower(repo_url), length(${tail})) = ${tail} OR right(lower(repo_url), length(${tailGit})) = ${tailGit})`,
      );
    }
    if (f.branch) where.push(`ref = ANY(${param([f.branch, `refs/heads/${f.branch}`])}::text[])`);
    if (f.state) where.push(`state = ${param(f.state)}::text`);
    if (f.before) where.push(`created_at < ${param(f.before)}::timestamptz`);
    return selectRows<PipelineRecord>(
      this.db,
      `SELECT ${PIPELINE_COLUMNS} FROM pipelines ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at DESC, id DESC LIMIT ${param(take)}`,
      values,
    );
  }

  /** The newest pipeline of a repository (`/owner/name`) on a branch: what its badge shows. */
  async newestOnBranch(repoPath: string, branch: string): Promise<PipelineRecord | undefined> {
    const [p] = await this.findPipelines({ repoPath, branch }, 1);
    return p;
  }

  async listJobs(pipelineId: string): Promise<PipelineJobRecord[]> {
    return selectRows<PipelineJobRecord>(
      this.db,
      `SELECT ${PIPELINE_JOB_COLUMNS} FROM pipeline_jobs WHERE pipeline_id = $1::uuid ORDER BY position`,
      [pipelineId],
    );
  }

  /** The name (with matrix values: `test[node=20]`) each of these job runs has in its pipeline. */
  async jobNames(jobIds: string[]): Promise<Map<string, string>> {
    const rows = await selectRows<{ jobId: string; name: string }>(
      this.db,
      `SELECT job_id::text AS "jobId", name FROM pipeline_jobs WHERE job_id = ANY($1::uuid[])`,
      [jobIds],
    );
    return new Map(rows.map((r) => [r.jobId, r.name]));
  }

  /** The pipeline a job run belongs to (the first, for a job reused by a rerun). */
  async pipelineOfJob(jobId: string): Promise<PipelineRecord | undefined> {
    const [p] = await selectRows<PipelineRecord>(
      this.db,
      `SELECT ${PIPELINE_COLUMNS} FROM pipelines
       WHERE id = (SELECT pj.pipeline_id FROM pipeline_jobs pj JOIN pipelines p ON p.id = pj.pipeline_id
                   WHERE pj.job_id = $1::uuid ORDER BY p.created_at LIMIT 1)`,
      [jobId],
    );
    return p;
  }

  /** A pipeline by full id or unique prefix (at least 4 characters); undefined when none matches. */
  async findPipeline(idOrPrefix: string): Promise<PipelineRecord | undefined> {
    const s = idOrPrefix.trim().toLowerCase();
    if (!ID_PREFIX.test(s)) return undefined;
    if (s.length === 36) return this.getPipeline(s);
    const matches = await idsStartingWith(this.db, 'pipelines', s);
    if (matches.length > 1)
      throw new InputError(`pipeline id prefix ${s} is ambiguous`, 'Give more characters of the id.');
    return matches.length === 1 ? this.getPipeline(matches[0]) : undefined;
  }

  async resolvePipeline(idOrPrefix: string): Promise<PipelineRecord> {
    const p = await this.findPipeline(idOrPrefix);
    if (!p) throw new NotFoundError(`no pipeline ${idOrPrefix}`, '`solstice pipelines` lists recent ones.');
    return p;
  }

  /** Every repository's pipeline with this number (`#12`), at most one per repository. */
  async withNumber(number: number): Promise<PipelineRecord[]> {
    if (!Number.isSafeInteger(number) || number < 1 || number > 2 ** 31 - 1) return [];
    return selectRows<PipelineRecord>(
      this.db,
      `SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE number = $1`,
      [number],
    );
  }

  /**
   * The newest pipelines, `offset` skipped; `repo` matches part of the repository URL, `branch`
   * the ref, `repos` (owner/name entries, as tokens carry) limits to those repositories.
   */
  async listPipelines(
    limit: number,
    filter: RunFilter<PipelineState> = {},
    offset = 0,
  ): Promise<PipelineRecord[]> {
    const { text, values } = newestRuns('pipelines', PIPELINE_COLUMNS, filter, limit, offset);
    return selectRows<PipelineRecord>(this.db, text, values);
  }
}
