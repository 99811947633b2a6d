/**
 * Queries about pipelines and their jobs, shared by activities and the CLI. Writes are
 * idempotent (Temporal retries activities).
 */
import type { Db } from './db';
import { InputError, NotFoundError } from '../platform/errors';
import type { PipelineInput, PipelineJobState, PipelineState } from '../model/domain';
import { runColumns, ID_PREFIX, idsStartingWith, newestFirst, runWhere, type RunFilter } from './run-rows';
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

const PIPELINE_FIELDS = {
  id: true,
  workflowId: true,
  source: true,
  event: true,
  repoUrl: true,
  commitSha: true,
  ref: true,
  state: true,
  message: true,
  rerunOf: true,
  number: true,
  createdAt: true,
  finishedAt: true,
} as const;

const PIPELINE_JOB_FIELDS = {
  name: true,
  needs: true,
  state: true,
  jobId: true,
  message: true,
  position: true,
} as const;

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
    const p = await this.db.pipeline.findUnique({ where: { id }, select: PIPELINE_FIELDS });
    return (p as PipelineRecord | null) ?? undefined;
  }

  async listJobs(pipelineId: string): Promise<PipelineJobRecord[]> {
    const rows = await this.db.pipelineJob.findMany({
      where: { pipelineId },
      orderBy: { position: 'asc' },
      select: PIPELINE_JOB_FIELDS,
    });
    return rows as PipelineJobRecord[];
  }

  /** The pipeline a job run belongs to (the latest, for a job reused by a rerun). */
  /** The name (with matrix values: `test[node=20]`) each of these job runs has in its pipeline. */
  async jobNames(jobIds: string[]): Promise<Map<string, string>> {
    const rows = await this.db.pipelineJob.findMany({
      where: { jobId: { in: jobIds } },
      select: { jobId: true, name: true },
    });
    return new Map(rows.map((r) => [r.jobId as string, r.name]));
  }

  async pipelineOfJob(jobId: string): Promise<PipelineRecord | undefined> {
    const row = await this.db.pipelineJob.findFirst({
      where: { jobId },
      orderBy: { pipeline: { createdAt: 'asc' } },
      select: { pipelineId: true },
    });
    return row ? this.getPipeline(row.pipelineId) : undefined;
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
    const rows = await this.db.pipeline.findMany({ where: { number }, select: PIPELINE_FIELDS });
    return rows as PipelineRecord[];
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
    const rows = await this.db.pipeline.findMany({
      ...newestFirst(limit),
      ...(offset > 0 ? { skip: offset } : {}),
      where: runWhere(filter),
      select: PIPELINE_FIELDS,
    });
    return rows as PipelineRecord[];
  }
}
