/**
 * Queries about jobs and their logs, in one place, shared by activities, the log service and
 * the CLI. Every write that may be repeated (Temporal retries, runner reconnects) is idempotent.
 */
import { selectRows, type Db } from './db';
import type { BlobStore } from './blob-store';
import { LogStore, type LogLineRecord } from './log-store';
import { NotFoundError, InputError } from '../platform/errors';
import type { JobInput, JobOutcome, JobState } from '../model/domain';
import { runColumns, ID_PREFIX, idsStartingWith, newestRuns, type RunFilter } from './run-rows';

export type { LogLineRecord } from './log-store';

/**
 * 'running': reported started, not yet ended (only while the job runs). 'interrupted': stopped
 * from outside while it ran (its machine was lost or shut down), so not the step's own failure.
 */
export type StepOutcome = 'running' | 'success' | 'failure' | 'skipped' | 'interrupted';

export interface JobStepRecord {
  /** The machine attempt that ran it (jobs.attempt): a retried job has the steps of each. */
  attempt: number;
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

/** A step as one attempt's runner reports it; the attempt is the token's. */
export type StepReport = Omit<JobStepRecord, 'attempt'>;

/** A machine attempt whose machine was lost, why (as its log line says), and that line. */
export interface LostAttemptRecord {
  attempt: number;
  message: string;
  logSeq: number;
}

/** What a step table shows: every attempt's steps, and why each lost attempt ended. */
export interface StepTable {
  /** By attempt, then index. */
  steps: JobStepRecord[];
  /** By attempt. */
  lost: LostAttemptRecord[];
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

/** JobRecord's fields, as a select list (see selectRows for why reads are SQL). */
const JOB_COLUMNS = `id::text AS id, workflow_id AS "workflowId", source, repo_url AS "repoUrl",
  commit_sha AS "commitSha", ref, label, state::text AS state, exit_code AS "exitCode", message, attempt,
  created_at AS "createdAt", started_at AS "startedAt", finished_at AS "finishedAt",
  log_expired_at AS "logExpiredAt", artifacts_expired_at AS "artifactsExpiredAt"`;

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
   * more), `message` is appended to the log and recorded as why the attempt ended, and the
   * attempt's running steps become interrupted, their log ending before that line.
   */
  async machineLost(jobId: string, attempt: number, message: string): Promise<void> {
    await this.db.$executeRaw`
      UPDATE jobs SET token_hash = NULL, token_expires_at = NULL
      WHERE id = ${jobId}::uuid AND attempt = ${attempt}`;
    const recorded = await this.db.lostAttempt.findUnique({
      where: { jobId_attempt: { jobId, attempt } },
      select: { logSeq: true },
    });
    let logSeq = recorded?.logSeq;
    if (logSeq === undefined) {
      // A repeat (activity retry) must not say it twice.
      const lastSeq = await this.logs.lastSeq(jobId);
      const [last] = lastSeq > 0 ? await this.logs.linesAfter(jobId, lastSeq - 1, 1) : [];
      logSeq = lastSeq;
      if (last?.text !== message) {
        logSeq = lastSeq + 1;
        await this.appendLogLines(jobId, [
          { seq: logSeq, stream: 'system', text: message, time: new Date() },
        ]);
      }
      await this.db.lostAttempt.createMany({
        data: [{ jobId, attempt, message, logSeq }],
        skipDuplicates: true,
      });
    }
    await this.db.jobStep.updateMany({
      where: { jobId, attempt, outcome: 'running' },
      data: { outcome: 'interrupted', lastSeq: logSeq - 1 },
    });
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

  async getMachine(
    machineId: string,
  ): Promise<{ jobId: string; attempt: number; destroyedAt: Date | null } | undefined> {
    const vm = await this.db.vm.findUnique({
      where: { id: machineId },
      select: { jobId: true, attempt: true, destroyedAt: true },
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

  /**
   * Replaces the attempt's steps with what its runner reported (a repeated FinishJob stores the
   * same); other attempts' steps stay.
   */
  async recordSteps(jobId: string, attempt: number, steps: StepReport[]): Promise<void> {
    await this.db.$transaction([
      this.db.jobStep.deleteMany({ where: { jobId, attempt } }),
      this.db.jobStep.createMany({ data: steps.map((st) => ({ jobId, attempt, ...st })) }),
    ]);
  }

  /**
   * A step's progress while the attempt runs (ReportStep). A step that already ended is never
   * set back to running; FinishJob's recordSteps replaces the attempt's steps with the runner's
   * final list.
   */
  async recordStepProgress(jobId: string, attempt: number, st: StepReport): Promise<void> {
    const { index, ...fields } = st;
    const { count } = await this.db.jobStep.updateMany({
      where: { jobId, attempt, index, outcome: 'running' },
      data: fields,
    });
    if (count === 0)
      await this.db.jobStep.createMany({ data: [{ jobId, attempt, ...st }], skipDuplicates: true });
  }

  /** Every attempt's steps, by attempt and then index. */
  async listSteps(jobId: string): Promise<JobStepRecord[]> {
    return selectRows<JobStepRecord>(
      this.db,
      `SELECT attempt, step_index AS index, name, outcome, exit_code AS "exitCode",
         continue_on_error AS "continueOnError", started_at AS "startedAt", duration_ms AS "durationMs",
         first_seq AS "firstSeq", last_seq AS "lastSeq"
       FROM job_steps WHERE job_id = $1::uuid ORDER BY attempt, step_index`,
      [jobId],
    );
  }

  /** The job's attempts whose machine was lost, by attempt. */
  async listLostAttempts(jobId: string): Promise<LostAttemptRecord[]> {
    return selectRows<LostAttemptRecord>(
      this.db,
      `SELECT attempt, message, log_seq AS "logSeq" FROM lost_attempts WHERE job_id = $1::uuid ORDER BY attempt`,
      [jobId],
    );
  }

  async stepTable(jobId: string): Promise<StepTable> {
    const [steps, lost] = await Promise.all([this.listSteps(jobId), this.listLostAttempts(jobId)]);
    return { steps, lost };
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
    const [job] = await selectRows<JobRecord>(
      this.db,
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1::uuid`,
      [jobId],
    );
    return job;
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
  async listJobs(limit: number, filter: RunFilter<JobState> = {}, offset = 0): Promise<JobRecord[]> {
    const { text, values } = newestRuns('jobs', JOB_COLUMNS, filter, limit, offset);
    return selectRows<JobRecord>(this.db, text, values);
  }
}
