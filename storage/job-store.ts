/**
 * Queries about jobs and their logs, in one place, shared by activities, the log service and
 * the CLI. Every write that may be repeated (Temporal retries, runner reconnects) is idempotent.
 */
import { pgPool, type Db } from './db';
import { NotFoundError, InputError } from '../platform/errors';
import type { JobInput, JobOutcome, JobState } from '../model/domain';
import { runColumns, ID_PREFIX, idsStartingWith, newestFirst } from './run-rows';

export interface LogLineRecord {
  seq: number;
  stream: string;
  text: string;
  time: Date;
}

/** 'running': reported started, not yet ended (only while the job runs). */
export type StepOutcome = 'running' | 'success' | 'failure' | 'skipped';

export interface JobStepRecord {
  index: number;
  name: string;
  outcome: StepOutcome;
  exitCode: number | null;
  continueOnError: boolean;
  startedAt: Date | null;
  durationMs: number | null;
  firstSeq: number | null;
  lastSeq: number | null;
}

export interface JobRecord {
  id: string;
  workflowId: string;
  source: string;
  repoUrl: string;
  commitSha: string;
  ref: string | null;
  label: string;
  state: JobState;
  exitCode: number | null;
  message: string | null;
  attempt: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

const JOB_FIELDS = {
  id: true,
  workflowId: true,
  source: true,
  repoUrl: true,
  commitSha: true,
  ref: true,
  label: true,
  state: true,
  exitCode: true,
  message: true,
  attempt: true,
  createdAt: true,
  startedAt: true,
  finishedAt: true,
} as const;

export class JobStore {
  constructor(readonly db: Db) {}

  async recordJob(input: JobInput, workflowId: string): Promise<void> {
    await this.db.job.upsert({
      where: { id: input.jobId },
      create: { ...runColumns(input.jobId, workflowId, input), label: input.label },
      update: {},
    });
  }

  /**
   * Starts a machine attempt: a new token replaces (and so revokes) the previous one. It works
   * until the job ends, and never past `expiresAt` (none: only until the job ends).
   */
  async beginAttempt(jobId: string, attempt: number, tokenHash: string, expiresAt?: Date): Promise<void> {
    await this.db.job.update({
      where: { id: jobId },
      data: { state: 'provisioning', attempt, tokenHash, tokenExpiresAt: expiresAt ?? null },
    });
  }

  /** The job a live token belongs to, or undefined (unknown, revoked, expired, or job finished). */
  async jobForToken(
    tokenHash: string,
  ): Promise<
    (Pick<JobRecord, 'id' | 'workflowId' | 'attempt' | 'state'> & { expiresAt?: Date }) | undefined
  > {
    const job = await this.db.job.findUnique({
      where: { tokenHash },
      select: { id: true, workflowId: true, attempt: true, state: true, tokenExpiresAt: true },
    });
    if (!job) return undefined;
    const { tokenExpiresAt, ...rest } = job;
    if (tokenExpiresAt && tokenExpiresAt.getTime() <= Date.now()) return undefined;
    return tokenExpiresAt ? { ...rest, expiresAt: tokenExpiresAt } : rest;
  }

  /** True when this call moved the job to running (false for a repeated StartJob). */
  async markRunning(jobId: string): Promise<boolean> {
    const { count } = await this.db.job.updateMany({
      where: { id: jobId, state: { in: ['queued', 'provisioning'] } },
      data: { state: 'running', startedAt: new Date() },
    });
    return count > 0;
  }

  /** The machine of a job's attempt: when it was recorded as created, and by which provider. */
  async machineOf(
    jobId: string,
    attempt: number,
  ): Promise<{ provider: string; createdAt: Date } | undefined> {
    const vm = await this.db.vm.findFirst({
      where: { jobId, attempt },
      orderBy: { createdAt: 'desc' },
      select: { provider: true, createdAt: true },
    });
    return vm ?? undefined;
  }

  async finalize(jobId: string, outcome: JobOutcome): Promise<void> {
    await this.db.job.update({
      where: { id: jobId },
      data: {
        state: outcome.state,
        exitCode: outcome.exitCode ?? null,
        message: outcome.message ?? null,
        finishedAt: new Date(),
        tokenHash: null,
        tokenExpiresAt: null,
      },
    });
  }

  async recordMachine(m: {
    id: string;
    jobId: string;
    provider: string;
    host: string;
    attempt: number;
    handle: object;
  }): Promise<void> {
    await this.db.vm.upsert({
      where: { id: m.id },
      create: { ...m, handle: m.handle },
      update: { handle: m.handle, destroyedAt: null },
    });
  }

  async getMachine(machineId: string): Promise<{ jobId: string; destroyedAt: Date | null } | undefined> {
    const vm = await this.db.vm.findUnique({
      where: { id: machineId },
      select: { jobId: true, destroyedAt: true },
    });
    return vm ?? undefined;
  }

  async machineDestroyed(machineId: string): Promise<void> {
    await this.db.vm.updateMany({ where: { id: machineId }, data: { destroyedAt: new Date() } });
  }

  /**
   * Stores lines; lines already stored (same seq) are left as they are. Returns how many were new.
   *
   * One statement per batch whatever its size: the columns go as four arrays that PostgreSQL
   * unnests into rows. Prisma's createMany sends a multi-row VALUES list instead, five
   * parameters a line, and was the log path's bottleneck (bench/log-store.ts measures both).
   * The statement goes to the pool directly, past Prisma (see pgPool for why).
   */
  async appendLogLines(jobId: string, lines: LogLineRecord[]): Promise<number> {
    if (lines.length === 0) return 0;
    const res = await pgPool(this.db).query(
      `INSERT INTO log_lines (job_id, seq, stream, text, time)
       SELECT $1::uuid, u.seq, u.stream, u.text, to_timestamp(u.ms / 1000.0)
       FROM unnest($2::int[], $3::text[], $4::text[], $5::float8[]) AS u(seq, stream, text, ms)
       ON CONFLICT (job_id, seq) DO NOTHING`,
      [
        jobId,
        lines.map((l) => l.seq),
        lines.map((l) => l.stream),
        lines.map((l) => l.text),
        lines.map((l) => l.time.getTime()),
      ],
    );
    return res.rowCount ?? 0;
  }

  /** Replaces the job's steps with what its runner reported (a repeated FinishJob stores the same). */
  async recordSteps(jobId: string, steps: JobStepRecord[]): Promise<void> {
    await this.db.$transaction([
      this.db.jobStep.deleteMany({ where: { jobId } }),
      this.db.jobStep.createMany({ data: steps.map((st) => ({ jobId, ...st })) }),
    ]);
  }

  /**
   * A step's progress while the job runs (ReportStep). A step that already ended is never set
   * back to running; FinishJob's recordSteps replaces all of it with the runner's final list.
   */
  async recordStepProgress(jobId: string, st: JobStepRecord): Promise<void> {
    const { index, ...fields } = st;
    const { count } = await this.db.jobStep.updateMany({
      where: { jobId, index, outcome: 'running' },
      data: fields,
    });
    if (count === 0) await this.db.jobStep.createMany({ data: [{ jobId, ...st }], skipDuplicates: true });
  }

  async listSteps(jobId: string): Promise<JobStepRecord[]> {
    const rows = await this.db.jobStep.findMany({
      where: { jobId },
      orderBy: { index: 'asc' },
      select: {
        index: true,
        name: true,
        outcome: true,
        exitCode: true,
        continueOnError: true,
        startedAt: true,
        durationMs: true,
        firstSeq: true,
        lastSeq: true,
      },
    });
    return rows as JobStepRecord[];
  }

  async lastLogSeq(jobId: string): Promise<number> {
    const agg = await this.db.logLine.aggregate({ where: { jobId }, _max: { seq: true } });
    return agg._max.seq ?? 0;
  }

  async logLinesAfter(jobId: string, afterSeq: number, limit: number): Promise<LogLineRecord[]> {
    return this.db.logLine.findMany({
      where: { jobId, seq: { gt: afterSeq } },
      orderBy: { seq: 'asc' },
      take: limit,
      select: { seq: true, stream: true, text: true, time: true },
    });
  }

  async countLogLines(jobId: string): Promise<number> {
    return this.db.logLine.count({ where: { jobId } });
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const job = await this.db.job.findUnique({ where: { id: jobId }, select: JOB_FIELDS });
    return (job as JobRecord | null) ?? undefined;
  }

  /** Accepts a full job id or a unique prefix of at least 4 characters, like git does for commits. */
  async resolveJob(idOrPrefix: string): Promise<JobRecord> {
    const s = idOrPrefix.trim().toLowerCase();
    if (!ID_PREFIX.test(s)) {
      throw new InputError(
        `"${idOrPrefix}" is not a job id`,
        'Job ids are UUIDs; `solstice jobs` lists recent ones.',
      );
    }
    if (s.length === 36) {
      const job = await this.getJob(s);
      if (!job) throw new NotFoundError(`no job ${s}`, '`solstice jobs` lists recent jobs.');
      return job;
    }
    const matches = await idsStartingWith(this.db, 'jobs', s);
    if (matches.length === 0)
      throw new NotFoundError(`no job starts with ${s}`, '`solstice jobs` lists recent jobs.');
    if (matches.length > 1)
      throw new InputError(`job id prefix ${s} is ambiguous`, 'Give more characters of the id.');
    return (await this.getJob(matches[0])) as JobRecord;
  }

  /**
   * The newest jobs; `repo` matches part of the repository URL, `branch` the ref (`main` or
   * `refs/heads/main`).
   */
  async listJobs(
    limit: number,
    filter: { repo?: string; branch?: string; state?: JobState } = {},
  ): Promise<JobRecord[]> {
    const jobs = await this.db.job.findMany({
      ...newestFirst(limit),
      where: {
        ...(filter.repo ? { repoUrl: { contains: filter.repo } } : {}),
        ...(filter.branch ? { ref: { in: [filter.branch, `refs/heads/${filter.branch}`] } } : {}),
        ...(filter.state ? { state: filter.state } : {}),
      },
      select: JOB_FIELDS,
    });
    return jobs as JobRecord[];
  }
}
