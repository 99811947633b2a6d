/**
 * Rows the storage tests need before they can store anything of a job: a manual job recorded
 * the way JobWorkflow's recordJob does, with no workflow, machine or forge behind it.
 */
import { randomUUID } from 'node:crypto';
import type { WakeChannel } from '../../storage/pg-wakeups';
import { pgPool, type Db } from '../../storage/db';
import type { JobStore } from '../../storage/job-store';

/** Records a queued manual job and returns its id. */
export async function recordTestJob(jobs: JobStore): Promise<string> {
  const jobId = randomUUID();
  await jobs.recordJob(
    {
      jobId,
      source: 'manual',
      repoUrl: '/r',
      commitSha: 'a'.repeat(40),
      label: 'local',
      timeoutMs: 60_000,
      bootTimeoutMs: 60_000,
      maxMachineAttempts: 1,
    },
    `test/${jobId}`,
  );
  return jobId;
}

/** How many connections of this database LISTEN on `channel` (storage/pg-wakeups.ts). */
export async function listeningConnections(db: Db, channel: WakeChannel): Promise<number> {
  const { rows } = await pgPool(db).query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query = $1`,
    [`LISTEN ${channel}`],
  );
  return Number(rows[0].n);
}
