/**
 * Queries about jobs and their logs, in one place, shared by activities, the log service and
 * the CLI. Every write that may be repeated (Temporal retries, runner reconnects) is idempotent.
 */
import type { Db } from './db';
import type { BlobStore } from './blob-store';
import { LogStore, type LogLineRecord } from './log-store';
import { NotFoundError, InputError } from '../platform/errors';
import type { JobInput, JobOutcome, JobState } from '../model/domain';
import { runColumns, ID_PREFIX, idsStartingWith, newestFirst } from './run-rows';

export type { LogLineRecord } from './log-store';

/**
 * 'running': reported started, not yet ended (only while the job runs). 'interrupted': stopped
 * from outside while it ran (its machine was lost or shut down), so not the step's own failure.
 */
export type StepOutcome = 'running' | 'success' | 'failure' | 'skipped' | 'interrupted';

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
  /** When retention removed the job's log / its artifacts (the job page says so). */
  logExpiredAt: Date | null;
  artifactsExpiredAt: Date | null;
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
  logExpiredAt: true,
  artifactsExpiredAt: true,
} as const;

export class JobStore {
  /** The job's log (storage/log-store.ts); reading a finished job's log needs the blob store. */
  readonly logs: LogStore;

  constructor(
    readonly db: Db,
    blobs?: BlobStore,
  ) {
    this.logs = new LogStore(db, blobs);
  }

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
      data: {
        state: 'provisioning',
        attempt,
        tokenHash,
        tokenExpiresAt: expiresAt ?? null,
        runnerContactAt: null,
      },
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

  /** The attempt's runner called in (StartJob, Heartbeat): stamped with the database's clock. */
  async runnerContact(jobId: string, attempt: number): Promise<void> {
    await this.db.$executeRaw`
      UPDATE jobs SET runner_contact_at = now() WHERE id = ${jobId}::uuid AND attempt = ${attempt}`;
  }

  /**
   * How long ago the attempt's runner last called in, in ms by the database's clock; undefined
   * when it never did (or the job is on another attempt).
   */
  async runnerSilence(jobId: string, attempt: number): Promise<number | undefined> {
    const rows = await this.db.$queryRaw<{ ms: number | null }[]>`
      SELECT (EXTRACT(EPOCH FROM (clock_timestamp() - runner_contact_at)) * 1000)::float8 AS ms
      FROM jobs WHERE id = ${jobId}::uuid AND attempt = ${attempt}`;
    const ms = rows[0]?.ms;
    return ms === null || ms === undefined ? undefined : Math.max(0, ms);
  }

  /**
   * The attempt's machine is lost: its token is revoked (a runner only cut off cannot write
   * more), its running steps become interrupted, and `message` is appended to the log.
   */
  async machineLost(jobId: string, attempt: number, message: string): Promise<void> {
    await this.db.$executeRaw`
      UPDATE jobs SET token_hash = NULL, token_expires_at = NULL
      WHERE id = ${jobId}::uuid AND attempt = ${attempt}`;
    await this.db.jobStep.updateMany({
      where: { jobId, outcome: 'running' },
      data: { outcome: 'interrupted' },
    });
    // A repeat (activity retry) must not say it twice.
    const lastSeq = await this.logs.lastSeq(jobId);
    const [last] = lastSeq > 0 ? await this.logs.linesAfter(jobId, lastSeq - 1, 1) : [];
    if (last?.text === message) return;
    await this.appendLogLines(jobId, [
      { seq: lastSeq + 1, stream: 'system', text: message, time: new Date() },
    ]);
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

  /** Stores lines that continue the log (see LogStore.append); returns how many were new. */
  async appendLogLines(jobId: string, lines: LogLineRecord[]): Promise<number> {
    return this.logs.append(jobId, lines);
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
      // An interrupted step is run again by the next machine attempt.
      where: { jobId, index, outcome: { in: ['running', 'interrupted'] } },
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
    return this.logs.lastSeq(jobId);
  }

  async logLinesAfter(jobId: string, afterSeq: number, limit: number): Promise<LogLineRecord[]> {
    return this.logs.linesAfter(jobId, afterSeq, limit);
  }

  /** Lines are dense from 1: the count is the last sequence number. */
  async countLogLines(jobId: string): Promise<number> {
    return this.logs.lastSeq(jobId);
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
