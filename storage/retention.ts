/**
 * Retention: what of finished work is old enough to go, and removing it, from PostgreSQL and the
 * blob store alike. One sweep applies all three settings (SOLSTICE_RETAIN_LOGS, _ARTIFACTS,
 * _PIPELINES); `solstice gc` runs it by hand and the worker's Temporal Schedule runs it on
 * SOLSTICE_GC_INTERVAL. Only finished jobs and pipelines are ever candidates.
 *
 * A job whose log or artifacts went keeps its row, marked with when (`log_expired_at`,
 * `artifacts_expired_at`), so its page says "log expired on …". A pipeline that went takes its
 * jobs with it (rows and every blob under `jobs/<id>/`), except jobs a kept pipeline still
 * names (a `rerun --failed` reuses the jobs that succeeded).
 *
 * Ended sign-in sessions go too, whatever the settings: each row held a user's OAuth token, and
 * once a session has ended nothing reads it again. They are kept a day after they end, so a
 * sign-out and the logs around it can still be matched to the row.
 */
import type { Retention } from '../platform/config';
import type { BlobStore } from './blob-store';
import { pgPool, type Db } from './db';
import { LogStore } from './log-store';
import { artifactBlobKey } from './artifact-store';
import { SessionStore } from './session-store';

/** How long an ended (expired or revoked) sign-in session is kept before the sweep removes it. */
export const ENDED_SESSION_KEEP_MS = 24 * 60 * 60 * 1000;

export interface RetentionPolicy {
  logs?: Retention;
  artifacts?: Retention;
  pipelines?: Retention;
}

export interface GcPlan {
  /** Jobs whose log goes. */
  logs: { jobId: string; finishedAt: Date }[];
  /** Jobs whose artifacts go. */
  artifacts: { jobId: string; finishedAt: Date; files: number }[];
  /** Pipelines that go, with the jobs that go with them. */
  pipelines: { pipelineId: string; finishedAt: Date; jobIds: string[] }[];
  /** Sign-in sessions that ended more than ENDED_SESSION_KEEP_MS ago (always swept). */
  endedSessions: number;
}

const FINAL = `('success','failure','error','cancelled')`;

/**
 * The condition a row must meet to go, over rows of `table` with `finished_at`, `created_at`,
 * `repo_url` and `ref`: older than the age, or past the newest N of its repository and branch.
 */
function beyond(r: Retention, table: string, params: unknown[]): string {
  if ('maxAgeMs' in r) {
    params.push(new Date(Date.now() - r.maxAgeMs));
    return `${table}.finished_at < $${params.length}::timestamptz`;
  }
  params.push(r.keepLast);
  return `${table}.id IN (SELECT id FROM (
      SELECT id, row_number() OVER (PARTITION BY repo_url, coalesce(ref, '') ORDER BY created_at DESC, id) AS n
      FROM ${table}) ranked WHERE n > $${params.length})`;
}

export async function planGc(db: Db, policy: RetentionPolicy): Promise<GcPlan> {
  const pool = pgPool(db);
  const plan: GcPlan = { logs: [], artifacts: [], pipelines: [], endedSessions: 0 };
  const endedBefore = new Date(Date.now() - ENDED_SESSION_KEEP_MS);
  const { rows: sessions } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM web_sessions WHERE expires_at < $1::timestamptz OR revoked_at < $1::timestamptz`,
    [endedBefore],
  );
  plan.endedSessions = Number(sessions[0]?.n ?? 0);
  if (policy.logs) {
    const params: unknown[] = [];
    const { rows } = await pool.query<{ id: string; finished_at: Date }>(
      `SELECT jobs.id, jobs.finished_at FROM jobs
       WHERE jobs.state::text IN ${FINAL} AND jobs.finished_at IS NOT NULL AND jobs.log_expired_at IS NULL
         AND ${beyond(policy.logs, 'jobs', params)}
       ORDER BY jobs.finished_at, jobs.id`,
      params,
    );
    plan.logs = rows.map((r) => ({ jobId: r.id, finishedAt: r.finished_at }));
  }
  if (policy.artifacts) {
    const params: unknown[] = [];
    const { rows } = await pool.query<{ id: string; finished_at: Date; files: string }>(
      `SELECT jobs.id, jobs.finished_at, (SELECT count(*) FROM artifacts a WHERE a.job_id = jobs.id) AS files
       FROM jobs
       WHERE jobs.state::text IN ${FINAL} AND jobs.finished_at IS NOT NULL AND jobs.artifacts_expired_at IS NULL
         AND EXISTS (SELECT 1 FROM artifacts a WHERE a.job_id = jobs.id)
         AND ${beyond(policy.artifacts, 'jobs', params)}
       ORDER BY jobs.finished_at, jobs.id`,
      params,
    );
    plan.artifacts = rows.map((r) => ({ jobId: r.id, finishedAt: r.finished_at, files: Number(r.files) }));
  }
  if (policy.pipelines) {
    const params: unknown[] = [];
    const { rows } = await pool.query<{ id: string; finished_at: Date }>(
      `SELECT pipelines.id, pipelines.finished_at FROM pipelines
       WHERE pipelines.state <> 'running' AND pipelines.finished_at IS NOT NULL
         AND ${beyond(policy.pipelines, 'pipelines', params)}
       ORDER BY pipelines.finished_at, pipelines.id`,
      params,
    );
    const going = rows.map((r) => r.id);
    const { rows: jobRows } = await pool.query<{ pipeline_id: string; job_id: string }>(
      `SELECT pj.pipeline_id, pj.job_id FROM pipeline_jobs pj JOIN jobs j ON j.id = pj.job_id
       WHERE pj.pipeline_id = ANY($1::uuid[]) AND j.state::text IN ${FINAL}
         AND NOT EXISTS (SELECT 1 FROM pipeline_jobs other
                         WHERE other.job_id = pj.job_id AND NOT (other.pipeline_id = ANY($1::uuid[])))`,
      [going],
    );
    plan.pipelines = rows.map((r) => ({
      pipelineId: r.id,
      finishedAt: r.finished_at,
      jobIds: jobRows.filter((j) => j.pipeline_id === r.id).map((j) => j.job_id),
    }));
  }
  return plan;
}

export interface GcResult {
  logs: number;
  artifacts: number;
  pipelines: number;
  jobs: number;
  blobs: number;
  sessions: number;
}

/** Removes what the plan names. Repeatable: what is already gone is skipped. */
export async function applyGc(db: Db, blobs: BlobStore, plan: GcPlan): Promise<GcResult> {
  const pool = pgPool(db);
  const logs = new LogStore(db, blobs);
  const result: GcResult = { logs: 0, artifacts: 0, pipelines: 0, jobs: 0, blobs: 0, sessions: 0 };
  const pipelineJobs = new Set(plan.pipelines.flatMap((p) => p.jobIds));
  for (const { jobId } of plan.logs) {
    if (pipelineJobs.has(jobId)) continue; // goes whole below
    await logs.expire(jobId);
    result.logs += 1;
    result.blobs += 2;
  }
  for (const { jobId } of plan.artifacts) {
    if (pipelineJobs.has(jobId)) continue;
    const { rows } = await pool.query<{ path: string }>(
      'SELECT path FROM artifacts WHERE job_id = $1::uuid',
      [jobId],
    );
    for (const r of rows) await blobs.delete(artifactBlobKey(jobId, r.path));
    result.blobs += rows.length;
    // One statement: the rows and the mark go together.
    await pool.query(
      `WITH gone AS (DELETE FROM artifacts WHERE job_id = $1::uuid)
       UPDATE jobs SET artifacts_expired_at = now() WHERE id = $1::uuid AND artifacts_expired_at IS NULL`,
      [jobId],
    );
    result.artifacts += 1;
  }
  for (const p of plan.pipelines) {
    for (const jobId of p.jobIds) {
      // Blobs first: a job row left behind by a crash here is found again by the next sweep.
      for (const b of await blobs.list(`jobs/${jobId}`)) {
        await blobs.delete(b.key);
        result.blobs += 1;
      }
    }
    await pool.query(
      `WITH p AS (DELETE FROM pipelines WHERE id = $1::uuid)
       DELETE FROM jobs WHERE id = ANY($2::uuid[])`,
      [p.pipelineId, p.jobIds],
    );
    result.pipelines += 1;
    result.jobs += p.jobIds.length;
  }
  if (plan.endedSessions > 0) result.sessions = await new SessionStore(db).prune(ENDED_SESSION_KEEP_MS);
  return result;
}

/** `solstice gc --dry-run` and the log of a sweep: one line per thing that goes. */
export function describePlan(plan: GcPlan): string[] {
  const day = (d: Date) => d.toISOString().slice(0, 19).replace('T', ' ');
  return [
    ...plan.pipelines.map(
      (p) =>
        `pipeline ${p.pipelineId} (finished ${day(p.finishedAt)}) with ${p.jobIds.length} job(s): rows and blobs`,
    ),
    ...plan.logs.map((l) => `log of job ${l.jobId} (finished ${day(l.finishedAt)})`),
    ...plan.artifacts.map((a) => `${a.files} artifact(s) of job ${a.jobId} (finished ${day(a.finishedAt)})`),
    ...(plan.endedSessions > 0 ? [`${plan.endedSessions} sign-in session(s) that ended over a day ago`] : []),
  ];
}

/** The policy the settings give. */
export function retentionPolicy(cfg: {
  retainLogs?: Retention;
  retainArtifacts?: Retention;
  retainPipelines?: Retention;
}): RetentionPolicy {
  return { logs: cfg.retainLogs, artifacts: cfg.retainArtifacts, pipelines: cfg.retainPipelines };
}

export function hasRetention(p: RetentionPolicy): boolean {
  return p.logs !== undefined || p.artifacts !== undefined || p.pipelines !== undefined;
}
