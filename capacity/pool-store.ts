/**
 * Warm-pool machines in PostgreSQL (table pool_machines; the migration says what each column
 * holds). A row goes booting → idle (its runner called WaitForAssignment) → claimed (a job's
 * assignment sealed into it) → delivered (the runner took it; the job's `vms` row is the record
 * from then on), or → dead (recycled, silent, evicted) and is deleted once destroyed.
 *
 * Capacity: a pool machine not reserved or claimed for a job occupies a slot of its host and
 * label like a lease does (capacity/store.ts counts both); reserved or claimed, its slot is its
 * job's lease.
 */
import pg from 'pg';
import { pgPool, type Db } from '../storage/db';
import { notifyWaiters, PgWakeups, WAKE_CHANNEL, type WakeChannel } from '../storage/pg-wakeups';
import type { MachineHandle } from '../model/domain';

export type PoolMachineState = 'booting' | 'idle' | 'claimed' | 'dead';

export interface PoolMachineRow {
  id: string;
  hostId: string;
  label: string;
  provider: string;
  handle: MachineHandle['details'];
  state: PoolMachineState;
  createdAt: Date;
  idleSince: Date | null;
  /** ms since the runner last called WaitForAssignment, by the database's clock; null: never. */
  silentMs: number | null;
  /** ms since the machine was booted, by the database's clock. */
  ageMs: number;
  reservedJobId: string | null;
  claimedJobId: string | null;
  claimedAt: Date | null;
  deliveredAt: Date | null;
}

/**
 * A runner heard from within this long (it calls again at once after each held call) may be
 * given a job. A looser bound costs nothing: a machine that died within it does not take the
 * assignment, and its job boots cold after CLAIM_DELIVERY_MS (activities/pool.ts).
 */
export const POOL_FRESH_MS = 15_000;

export interface Claimed {
  machine: PoolMachineRow;
  idleMs: number;
}

/**
 * How long a process keeps listening for pool wake-ups after its last waiter: an idle machine's
 * runner calls WaitForAssignment again at once after each held call ends, so a short gap between
 * two calls must not close and reopen the connection (a claim in that gap would wait for a poll).
 */
const WAKE_LINGER_MS = 60_000;

export class PoolStore {
  /** WaitForAssignment's held calls wait on these, by machine id: a job was sealed to it. */
  readonly claims: PgWakeups;
  /** A claim waits on these, by job id: its machine took the job. */
  readonly deliveries: PgWakeups;

  constructor(readonly db: Db) {
    const connect = () => new pg.Client(pgPool(db).options);
    this.claims = new PgWakeups(connect, WAKE_CHANNEL.poolClaim, WAKE_LINGER_MS);
    this.deliveries = new PgWakeups(connect, WAKE_CHANNEL.poolDelivery);
  }

  /** Best effort, after the commit (see LogStore.notifyStored): a lost one costs a poll. */
  private notify(channel: WakeChannel, key: string): void {
    void notifyWaiters(pgPool(this.db), channel, [key]).catch(() => undefined);
  }

  async list(hostId?: string): Promise<PoolMachineRow[]> {
    return this.db.$queryRaw<PoolMachineRow[]>`
      SELECT id, host_id AS "hostId", label, provider, handle, state, created_at AS "createdAt",
             idle_since AS "idleSince",
             (EXTRACT(EPOCH FROM (clock_timestamp() - last_contact)) * 1000)::float8 AS "silentMs",
             (EXTRACT(EPOCH FROM (clock_timestamp() - created_at)) * 1000)::float8 AS "ageMs",
             reserved_job_id::text AS "reservedJobId", claimed_job_id::text AS "claimedJobId",
             claimed_at AS "claimedAt", delivered_at AS "deliveredAt"
      FROM pool_machines
      WHERE ${hostId ?? null}::text IS NULL OR host_id = ${hostId ?? null}
      ORDER BY host_id, label, created_at`;
  }

  async get(id: string): Promise<PoolMachineRow | undefined> {
    return (await this.list()).find((m) => m.id === id);
  }

  async setHandle(id: string, handle: object): Promise<void> {
    await this.db.poolMachine.updateMany({ where: { id }, data: { handle } });
  }

  /** No claim may go to it any more; returns whether this call did it (a claimed one is left alone). */
  async markDead(id: string, unlessClaimed = true): Promise<boolean> {
    const n = unlessClaimed
      ? await this.db.$executeRaw`
          UPDATE pool_machines SET state = 'dead', token_hash = NULL, assignment = NULL
          WHERE id = ${id} AND state <> 'dead' AND claimed_job_id IS NULL`
      : await this.db.$executeRaw`
          UPDATE pool_machines SET state = 'dead', token_hash = NULL, assignment = NULL
          WHERE id = ${id} AND delivered_at IS NULL`;
    return n > 0;
  }

  async remove(id: string): Promise<void> {
    await this.db.poolMachine.deleteMany({ where: { id } });
  }

  /** Reservations of jobs whose lease ended before they claimed: the machine is free again. */
  async clearStaleReservations(): Promise<void> {
    await this.db.$executeRaw`
      UPDATE pool_machines p SET reserved_job_id = NULL
      FROM leases l
      WHERE l.job_id = p.reserved_job_id AND l.released_at IS NOT NULL AND p.claimed_job_id IS NULL`;
  }

  /**
   * The idle machine this job may take: the one the scheduler reserved for it, else any fresh
   * unreserved one of its label on this host. Locked for the caller's transaction.
   */
  async claimCandidate(
    tx: Pick<Db, '$queryRaw'>,
    hostId: string,
    label: string,
    jobId: string,
  ): Promise<
    { id: string; publicKey: string; idleMs: number; handle: MachineHandle['details'] } | undefined
  > {
    const fresh = `${POOL_FRESH_MS} milliseconds`;
    const rows = await tx.$queryRaw<
      { id: string; publicKey: string; idleMs: number; handle: MachineHandle['details'] }[]
    >`
      SELECT id, public_key AS "publicKey", handle,
             (EXTRACT(EPOCH FROM (clock_timestamp() - idle_since)) * 1000)::float8 AS "idleMs"
      FROM pool_machines
      WHERE host_id = ${hostId} AND label = ${label} AND state = 'idle' AND claimed_job_id IS NULL
        AND public_key IS NOT NULL AND last_contact > clock_timestamp() - ${fresh}::interval
        AND (reserved_job_id = ${jobId}::uuid OR reserved_job_id IS NULL)
      ORDER BY (reserved_job_id IS NULL), created_at
      LIMIT 1 FOR UPDATE SKIP LOCKED`;
    return rows[0];
  }

  /**
   * Claims the machine for the job's attempt with its sealed job file, and records it as the
   * attempt's machine (`vms`), in one transaction. `seal` gets the runner's public key.
   * `prepare` readies the machine for the job (its repository) before the commit: the runner's
   * next look waits on the row's lock, so it cannot take the job before that is done.
   */
  async claim(req: {
    hostId: string;
    label: string;
    jobId: string;
    attempt: number;
    seal: (publicKey: string, machineId: string, idleMs: number) => string;
    prepare?: (machine: { id: string; handle: MachineHandle['details'] }) => Promise<void>;
  }): Promise<Claimed | undefined> {
    const claimed = await this.db.$transaction(
      async (tx) => {
        const c = await this.claimCandidate(tx, req.hostId, req.label, req.jobId);
        if (!c) return undefined;
        await req.prepare?.({ id: c.id, handle: c.handle });
        const sealed = req.seal(c.publicKey, c.id, c.idleMs);
        const n = await tx.$executeRaw`
        UPDATE pool_machines SET state = 'claimed', claimed_job_id = ${req.jobId}::uuid,
          claimed_attempt = ${req.attempt}, claimed_at = clock_timestamp(), assignment = ${sealed},
          reserved_job_id = ${req.jobId}::uuid
        WHERE id = ${c.id} AND state = 'idle'`;
        if (n !== 1) return undefined;
        await tx.$executeRaw`
        INSERT INTO vms (id, job_id, provider, host, attempt, handle)
        SELECT id, ${req.jobId}::uuid, provider, host_id, ${req.attempt}, handle FROM pool_machines
        WHERE id = ${c.id}
        ON CONFLICT (id) DO UPDATE SET job_id = EXCLUDED.job_id, attempt = EXCLUDED.attempt,
          handle = EXCLUDED.handle, destroyed_at = NULL`;
        return { id: c.id, idleMs: c.idleMs };
      },
      // prepare starts a process (a git daemon) while the row is locked.
      { timeout: 30_000 },
    );
    if (!claimed) return undefined;
    this.notify(WAKE_CHANNEL.poolClaim, claimed.id);
    const machine = await this.get(claimed.id);
    return machine ? { machine, idleMs: claimed.idleMs } : undefined;
  }

  /** Whether the runner took the assignment. */
  async delivered(id: string): Promise<boolean> {
    const row = await this.db.poolMachine.findUnique({ where: { id }, select: { deliveredAt: true } });
    return row?.deliveredAt !== null && row?.deliveredAt !== undefined;
  }

  /** The claim of (job, attempt), if an earlier try of the same provisioning made one. */
  async claimOf(jobId: string, attempt: number): Promise<PoolMachineRow | undefined> {
    const row = await this.db.poolMachine.findFirst({
      where: { claimedJobId: jobId, claimedAttempt: attempt },
      select: { id: true },
    });
    return row ? this.get(row.id) : undefined;
  }

  /**
   * WaitForAssignment's one statement per look: stamps the runner's contact (a booting machine
   * becomes idle), and takes the assignment if there is one, revoking the pool token with it.
   * Undefined: the token is not this machine's (unknown, revoked, or the machine is dead).
   */
  async waitLook(
    machineId: string,
    tokenHash: string,
    publicKey: string,
  ): Promise<{ assignment?: string } | undefined> {
    const rows = await this.db.$queryRaw<{ assignment: string | null; jobId: string | null }[]>`
      WITH old AS (
        SELECT id, assignment FROM pool_machines
        WHERE id = ${machineId} AND token_hash = ${tokenHash} AND state <> 'dead' FOR UPDATE
      )
      UPDATE pool_machines p SET
        last_contact = clock_timestamp(),
        idle_since = COALESCE(p.idle_since, clock_timestamp()),
        state = CASE WHEN p.state = 'booting' THEN 'idle' ELSE p.state END,
        public_key = CASE WHEN p.state IN ('booting', 'idle') THEN ${publicKey} ELSE p.public_key END,
        assignment = NULL,
        delivered_at = CASE WHEN old.assignment IS NOT NULL THEN clock_timestamp() ELSE p.delivered_at END,
        token_hash = CASE WHEN old.assignment IS NOT NULL THEN NULL ELSE p.token_hash END
      FROM old WHERE p.id = old.id
      RETURNING old.assignment, p.claimed_job_id::text AS "jobId"`;
    if (rows.length === 0) return undefined;
    const { assignment, jobId } = rows[0];
    if (!assignment) return {};
    if (jobId) this.notify(WAKE_CHANNEL.poolDelivery, jobId);
    return { assignment };
  }
}
