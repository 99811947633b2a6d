/**
 * Capacity in PostgreSQL: hosts register and heartbeat, jobs request a lease, and `schedule()`
 * grants waiting leases (planGrants) inside one transaction holding an advisory lock, so
 * workers scheduling at the same moment take turns and never over-commit a label or a host.
 * Time comes from the database clock only: hosts' clocks may disagree.
 */
import {
  planGrants,
  poolRoom,
  queuePositions,
  type HeldLease,
  type HostCapacity,
  type PlanInput,
  type PoolSlot,
  type WaitingRequest,
} from './plan';
import { POOL_FRESH_MS } from './pool-store';
import type { Db } from '../storage/db';

/** Arbitrary constant naming the scheduler's advisory lock. */
const SCHEDULER_LOCK = 727_115_001;

export interface HostRegistration {
  id: string;
  taskQueue: string;
  labels: readonly string[];
  maxMachines: number;
}

export interface LeaseRecord {
  jobId: string;
  label: string;
  hostId: string | null;
  /** The granted host's task queue, while the host is registered. */
  taskQueue: string | null;
  grantedAt: Date | null;
  releasedAt: Date | null;
  releaseReason: string | null;
}

/** A slot granted by one scheduling round. */
export interface GrantMade {
  jobId: string;
  hostId: string;
  taskQueue: string;
  workflowId: string;
}

export interface ScheduleOptions {
  labelLimits: Readonly<Record<string, number>>;
  hostTtlMs: number;
}

export class CapacityStore {
  constructor(private readonly db: Db) {}

  async registerHost(h: HostRegistration): Promise<void> {
    await this.db.$executeRaw`
      INSERT INTO hosts (id, task_queue, labels, max_machines, started_at, last_seen)
      VALUES (${h.id}, ${h.taskQueue}, ${[...h.labels]}::text[], ${h.maxMachines}, now(), now())
      ON CONFLICT (id) DO UPDATE SET task_queue = EXCLUDED.task_queue, labels = EXCLUDED.labels,
        max_machines = EXCLUDED.max_machines, started_at = now(), last_seen = now(), stopped_at = NULL`;
  }

  async heartbeatHost(id: string): Promise<void> {
    await this.db.$executeRaw`UPDATE hosts SET last_seen = now() WHERE id = ${id}`;
  }

  /** A clean shutdown: no new machines go there. Its leases stay until their jobs release them. */
  async stopHost(id: string): Promise<void> {
    await this.db.$executeRaw`UPDATE hosts SET stopped_at = now() WHERE id = ${id}`;
  }

  /** Labels some registered host (live or not) serves. */
  async knownLabels(): Promise<string[]> {
    const rows = await this.db.$queryRaw<{ label: string }[]>`
      SELECT DISTINCT unnest(labels) AS label FROM hosts ORDER BY label`;
    return rows.map((r) => r.label);
  }

  /** Idempotent: a repeated request keeps its place in the queue. */
  async request(jobId: string, label: string): Promise<void> {
    await this.db.$executeRaw`
      INSERT INTO leases (job_id, label) VALUES (${jobId}::uuid, ${label}) ON CONFLICT (job_id) DO NOTHING`;
  }

  /** Idempotent; returns whether this call released it. */
  async release(jobId: string, reason: string): Promise<boolean> {
    const n = await this.db.$executeRaw`
      UPDATE leases SET released_at = now(), release_reason = ${reason}
      WHERE job_id = ${jobId}::uuid AND released_at IS NULL`;
    return n > 0;
  }

  /**
   * Puts a job whose granted host is gone back in its label's queue, at its old place (it has
   * waited already): the next scheduling round grants it on a live host. Returns whether a
   * lease was there to requeue.
   */
  async requeue(jobId: string): Promise<boolean> {
    const n = await this.db.$executeRaw`
      UPDATE leases SET host_id = NULL, granted_at = NULL, released_at = NULL, release_reason = NULL
      WHERE job_id = ${jobId}::uuid`;
    return n > 0;
  }

  async lease(jobId: string): Promise<LeaseRecord | undefined> {
    const rows = await this.db.$queryRaw<LeaseRecord[]>`
      SELECT l.job_id::text AS "jobId", l.label, l.host_id AS "hostId", h.task_queue AS "taskQueue",
             l.granted_at AS "grantedAt", l.released_at AS "releasedAt", l.release_reason AS "releaseReason"
      FROM leases l LEFT JOIN hosts h ON h.id = l.host_id
      WHERE l.job_id = ${jobId}::uuid`;
    return rows[0];
  }

  /** Waiting requests, oldest first. */
  private async waiting(db: Pick<Db, '$queryRaw'>): Promise<WaitingRequest[]> {
    return db.$queryRaw<WaitingRequest[]>`
      SELECT job_id::text AS "jobId", label FROM leases
      WHERE granted_at IS NULL AND released_at IS NULL ORDER BY seq`;
  }

  /** The job's 1-based place among the waiting jobs of its label, or undefined when not waiting. */
  async queuePosition(jobId: string): Promise<number | undefined> {
    return queuePositions(await this.waiting(this.db)).get(jobId);
  }

  /**
   * Reclaims the leases of hosts not heard of within the TTL, then grants what fits.
   * Returns the grants made, with each job's workflow and the host's task queue, so the caller
   * can tell the waiting workflows (capacity/grants.ts).
   */
  async schedule(opts: ScheduleOptions): Promise<GrantMade[]> {
    return this.db.$transaction(async (tx) => (await this.scheduleIn(tx, opts)).made);
  }

  /**
   * A scheduling round and then, in the same transaction and under the same lock, the pool's
   * question: may a new pool machine of `label` boot on `hostId`? With `room`, its row is
   * inserted (booting) by `insert` before the lock is let go, so two rounds never both fill
   * the last slot.
   */
  async schedulePoolMachine(
    opts: ScheduleOptions,
    hostId: string,
    label: string,
    insert: (tx: Pick<Db, '$executeRaw'>) => Promise<unknown>,
  ): Promise<{ made: GrantMade[]; room: 'room' | 'full' | 'evict' }> {
    return this.db.$transaction(async (tx) => {
      const round = await this.scheduleIn(tx, opts);
      const room = poolRoom(round.input, round.grants, hostId, label);
      if (room === 'room') await insert(tx);
      return { made: round.made, room };
    });
  }

  private async scheduleIn(
    tx: Parameters<Parameters<Db['$transaction']>[0]>[0],
    opts: ScheduleOptions,
  ): Promise<{ made: GrantMade[]; input: PlanInput; grants: ReturnType<typeof planGrants> }> {
    const ttl = `${Math.max(1, Math.round(opts.hostTtlMs))} milliseconds`;
    const fresh = `${POOL_FRESH_MS} milliseconds`;
    // The caller's transaction holds the lock until it commits.
    {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${SCHEDULER_LOCK})`;
      await tx.$executeRaw`
        UPDATE leases l SET released_at = now(),
          release_reason = 'reclaimed: host ' || l.host_id || ' stopped heartbeating'
        FROM hosts h
        WHERE h.id = l.host_id AND l.released_at IS NULL AND h.last_seen < now() - ${ttl}::interval`;
      const hosts = await tx.$queryRaw<HostCapacity[]>`
        SELECT id, labels, max_machines AS "maxMachines" FROM hosts
        WHERE stopped_at IS NULL AND last_seen >= now() - ${ttl}::interval`;
      const held = await tx.$queryRaw<HeldLease[]>`
        SELECT label, host_id AS "hostId" FROM leases WHERE granted_at IS NOT NULL AND released_at IS NULL`;
      // A machine reserved or claimed for a job holds its slot through the job's lease.
      const pool = await tx.$queryRaw<PoolSlot[]>`
        SELECT id, host_id AS "hostId", label,
               (state = 'idle' AND public_key IS NOT NULL
                AND last_contact > clock_timestamp() - ${fresh}::interval) AS idle
        FROM pool_machines WHERE reserved_job_id IS NULL AND claimed_job_id IS NULL
        ORDER BY created_at`;
      const input: PlanInput = {
        waiting: await this.waiting(tx),
        hosts,
        held,
        labelLimits: opts.labelLimits,
        pool,
      };
      const grants = planGrants(input);
      // clock_timestamp(), not now(): this transaction may have started before a release it saw
      // committed, and a grant must never look older than the release that made room for it.
      const made: GrantMade[] = [];
      for (const g of grants) {
        const rows = await tx.$queryRaw<GrantMade[]>`
          UPDATE leases l SET host_id = ${g.hostId}, granted_at = clock_timestamp()
          FROM jobs j, hosts h
          WHERE l.job_id = ${g.jobId}::uuid AND j.id = l.job_id AND h.id = ${g.hostId}
          RETURNING l.job_id::text AS "jobId", l.host_id AS "hostId", h.task_queue AS "taskQueue",
                    j.workflow_id AS "workflowId"`;
        made.push(...rows);
        if (g.poolMachineId && rows.length > 0)
          await tx.$executeRaw`
            UPDATE pool_machines SET reserved_job_id = ${g.jobId}::uuid
            WHERE id = ${g.poolMachineId} AND reserved_job_id IS NULL`;
      }
      return { made, input, grants };
    }
  }

  /** Unreleased leases (waiting or granted) with their job's workflow, oldest first. */
  async activeLeases(limit: number): Promise<{ jobId: string; workflowId: string }[]> {
    return this.db.$queryRaw<{ jobId: string; workflowId: string }[]>`
      SELECT l.job_id::text AS "jobId", j.workflow_id AS "workflowId"
      FROM leases l JOIN jobs j ON j.id = l.job_id
      WHERE l.released_at IS NULL ORDER BY l.seq LIMIT ${limit}`;
  }
}
