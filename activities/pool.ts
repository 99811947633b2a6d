/**
 * Warm pools, the host side (docs/qemu.md, "Warm pools"): `reconcilePool` keeps this host's
 * pool machines at their label's PoolSpec, and `claimPoolMachine` hands one to a job. Both run
 * on the host's own task queue, so the machines are made and destroyed by the host they run on.
 *
 * Who owns the pool durably: the per-host PoolWorkflow (workflows/pool.ts) calls
 * `reconcilePool` on a timer and whenever a claim signals it; the rows in pool_machines are
 * the state, so a worker that was SIGKILLed finds its idle machines on restart and adopts the
 * live ones (their runners still call WaitForAssignment) and destroys the rest.
 */
import { randomUUID } from 'node:crypto';
import { Context, heartbeat, log } from '@temporalio/activity';
import { PoolStore, type PoolMachineRow } from '../capacity/pool-store';
import type { Waiter } from '../storage/pg-wakeups';
import type { CapacityStore, ScheduleOptions } from '../capacity/store';
import type { PoolSpec } from '../capacity/pool-spec';
import { announceGrants } from '../capacity/grants';
import { hashJobToken, newJobToken } from '../model/job-token';
import { seal } from '../model/sealed-box';
import { renderPoolSeed } from '../provisioning/cloud-init';
import { poolMachineId, type GuestEndpoints, type Provider } from '../provisioning/contract';
import type { MachineHandle } from '../model/domain';
import { poolKickSignal } from '../workflows/signals';

export interface PoolDeps {
  pool: PoolStore;
  capacity: CapacityStore;
  schedule: ScheduleOptions;
  /** Pools of this host, by label. */
  pools: Readonly<Record<string, PoolSpec>>;
  providers: ReadonlyMap<string, Provider>;
  hostId: string;
  runnerUrl: string;
  contactAddr: string;
  tlsCaPem?: string;
  /** An idle machine whose runner has not called for this long is dead (SOLSTICE_MACHINE_LIVENESS). */
  machineLivenessMs: number;
  /** A pool machine whose runner never called within this is dead (SOLSTICE_BOOT_TIMEOUT). */
  bootTimeoutMs: number;
}

/** What reconcilePool saw and did, for the PoolWorkflow's details in the Web UI. */
export interface PoolReport {
  labels: {
    label: string;
    idle: number;
    booting: number;
    reserved: number;
    minIdle: number;
    maxIdle: number;
  }[];
  booted: number;
  destroyed: { machineId: string; reason: string }[];
  /** No pool configured and no pool machine left: the workflow may end. */
  empty: boolean;
}

/** A claimed machine whose runner took no assignment within this is taken for dead. */
export const CLAIM_DELIVERY_MS = 10_000;

export function poolWorkflowId(hostId: string): string {
  return `pool/${hostId}`;
}

export function createPoolActivities(deps: PoolDeps) {
  const providerOf = (label: string): Provider | undefined => deps.providers.get(label);

  const destroy = async (m: PoolMachineRow, reason: string, report?: PoolReport): Promise<void> => {
    await deps.pool.markDead(m.id, m.state !== 'claimed');
    const provider = [...deps.providers.values()].find((p) => p.name === m.provider);
    const handle: MachineHandle = {
      machineId: m.id,
      provider: m.provider,
      hostId: m.hostId,
      details: m.handle,
    };
    heartbeat(`destroying ${m.id}`);
    if (provider) await provider.destroy(handle);
    await deps.pool.remove(m.id);
    await deps.pool.db.vm.updateMany({ where: { id: m.id }, data: { destroyedAt: new Date() } });
    log.info('pool machine destroyed', { machineId: m.id, label: m.label, reason });
    report?.destroyed.push({ machineId: m.id, reason });
  };

  /** Why an unclaimed pool machine must go now, or undefined. */
  const verdict = (m: PoolMachineRow, spec: PoolSpec | undefined): string | undefined => {
    if (m.state === 'dead') return 'marked dead';
    if (!spec) return `label ${m.label} has no pool on this host any more`;
    if (m.state === 'booting' && m.ageMs > deps.bootTimeoutMs)
      return `its runner did not call within ${Math.round(deps.bootTimeoutMs / 1000)} s of booting`;
    if (m.state === 'idle' && (m.silentMs ?? Infinity) > deps.machineLivenessMs)
      return `idle machine silent for ${Math.round((m.silentMs ?? 0) / 1000)} s (died while idle)`;
    if (m.state === 'idle' && !m.reservedJobId && m.idleSince && m.ageMs > spec.maxIdleAgeMs)
      return `older than max_idle_age (${Math.round(spec.maxIdleAgeMs / 1000)} s): recycled`;
    return undefined;
  };

  const bootOne = async (label: string, provider: Provider): Promise<boolean> => {
    const id = poolMachineId(randomUUID());
    const token = newJobToken();
    const { made, room } = await deps.capacity.schedulePoolMachine(
      deps.schedule,
      deps.hostId,
      label,
      (tx) =>
        tx.$executeRaw`
        INSERT INTO pool_machines (id, host_id, label, provider, handle, token_hash)
        VALUES (${id}, ${deps.hostId}, ${label}, ${provider.name}, '{}'::jsonb, ${hashJobToken(token)})`,
    );
    await announceGrants(Context.current().client, made, (msg, a) => log.warn(msg, a));
    if (room !== 'room') return false;
    const hostView: GuestEndpoints = {
      runnerUrl: deps.runnerUrl,
      contactAddr: deps.contactAddr,
      repoUrl: '',
    };
    const guest = provider.guestEndpoints?.(hostView) ?? hostView;
    try {
      heartbeat(`booting ${id}`);
      const handle = await provider.create({
        machineId: id,
        jobId: '',
        attempt: 0,
        label,
        repoUrl: '',
        seed: renderPoolSeed({
          machineId: id,
          label,
          poolToken: token,
          runnerUrl: guest.runnerUrl,
          contactAddr: guest.contactAddr,
          tlsCa: deps.tlsCaPem,
          hostId: deps.hostId,
        }),
      });
      await deps.pool.setHandle(id, handle.details);
      log.info('pool machine booting', { machineId: id, label });
      return true;
    } catch (err) {
      await deps.pool.remove(id);
      throw err;
    }
  };

  return {
    /**
     * One look at this host's pools: destroys the dead, silent, too old and surplus machines,
     * makes room for queued jobs of other labels, and boots machines up to each min_idle
     * where capacity allows (queued jobs first).
     */
    async reconcilePool(): Promise<PoolReport> {
      const report: PoolReport = { labels: [], booted: 0, destroyed: [], empty: false };
      await deps.pool.clearStaleReservations();
      let rows = await deps.pool.list(deps.hostId);
      for (const m of rows) {
        if (m.state === 'claimed') {
          // Delivered: the job's `vms` row is the record now. Not delivered long after the claim:
          // the claiming activity died; its job cold-boots or retries.
          if (m.deliveredAt) await deps.pool.remove(m.id);
          else if (m.claimedAt && Date.now() - m.claimedAt.getTime() > 6 * CLAIM_DELIVERY_MS)
            await destroy(m, 'claimed but never delivered', report);
          continue;
        }
        const why = verdict(m, deps.pools[m.label]);
        if (why) await destroy(m, why, report);
      }
      rows = (await deps.pool.list(deps.hostId)).filter((m) => m.state === 'booting' || m.state === 'idle');
      for (const [label, spec] of Object.entries(deps.pools)) {
        const mine = rows.filter((m) => m.label === label);
        const free = mine.filter((m) => !m.reservedJobId);
        // Surplus idle machines (max_idle lowered, or a restart adopted more): oldest go first.
        for (const m of free.slice(spec.maxIdle))
          await destroy(m, `more than max_idle (${spec.maxIdle})`, report);
        let have = Math.min(free.length, spec.maxIdle);
        const provider = providerOf(label);
        while (provider && have < spec.minIdle) {
          if (!(await bootOne(label, provider))) break;
          have += 1;
          report.booted += 1;
        }
        // Queued jobs this host could run wait behind idle machines: one makes room per look.
        const { room } = await deps.capacity.schedulePoolMachine(
          deps.schedule,
          deps.hostId,
          label,
          async () => {},
        );
        if (room === 'evict') {
          const victim = (await deps.pool.list(deps.hostId)).find(
            (m) => m.state === 'idle' && !m.reservedJobId && !m.claimedJobId,
          );
          if (victim) await destroy(victim, 'evicted: queued jobs need its slot', report);
        }
      }
      const after = await deps.pool.list(deps.hostId);
      for (const [label, spec] of Object.entries(deps.pools)) {
        const mine = after.filter((m) => m.label === label && m.state !== 'claimed' && m.state !== 'dead');
        report.labels.push({
          label,
          idle: mine.filter((m) => m.state === 'idle' && !m.reservedJobId).length,
          booting: mine.filter((m) => m.state === 'booting').length,
          reserved: mine.filter((m) => m.reservedJobId).length,
          minIdle: spec.minIdle,
          maxIdle: spec.maxIdle,
        });
      }
      report.empty = Object.keys(deps.pools).length === 0 && after.length === 0;
      return report;
    },
  };
}

export type ClaimResult =
  { warm: true; handle: MachineHandle; idleMs: number } | { warm: false; why: string };

/**
 * Gives the job's attempt an idle pool machine of its label on this host, if there is one that
 * is alive right now: the job file (token, secrets, definition; `jobFile` renders it with the
 * note that says how long the machine waited) is sealed to the machine's runner and delivered
 * by the log service. A machine that does not take it within CLAIM_DELIVERY_MS died or was
 * recycled as it was claimed: it is destroyed and the job gets a fresh (cold) machine instead.
 * `prepare` readies the machine for this job before the runner can take it (the QEMU provider
 * serves a host-folder repository to it); a machine it fails on goes, and the job boots cold.
 */
export async function claimPoolMachine(
  deps: PoolDeps,
  req: {
    jobId: string;
    attempt: number;
    label: string;
    jobFile: (idleMs: number) => string;
    prepare?: (handle: MachineHandle) => Promise<void>;
  },
): Promise<ClaimResult> {
  const handleOf = (m: PoolMachineRow): MachineHandle => ({
    machineId: m.id,
    provider: m.provider,
    hostId: m.hostId,
    details: m.handle,
  });
  const earlier = await deps.pool.claimOf(req.jobId, req.attempt);
  if (earlier) {
    // A retried provisioning whose first try claimed: the runner has the first try's token, which
    // this try replaced; that machine cannot serve this attempt, so it goes like a dead one.
    const dead = await deps.pool.markDead(earlier.id, false);
    if (dead || earlier.deliveredAt) await destroyClaimed(deps, earlier);
  }
  // Before the claim: the listening connection is open by the time the machine takes the job.
  const delivery = deps.pool.deliveries.follow(req.jobId);
  try {
    return await claimAndDeliver(deps, req, handleOf, delivery);
  } finally {
    delivery.release();
  }
}

/** How often a claim looks whether its machine took the job when no wake-up came. */
const DELIVERY_LOOK_MS = 250;

async function claimAndDeliver(
  deps: PoolDeps,
  req: Parameters<typeof claimPoolMachine>[1],
  handleOf: (m: PoolMachineRow) => MachineHandle,
  delivery: Waiter,
): Promise<ClaimResult> {
  let unprepared: { id: string; err: unknown } | undefined;
  const prepare = req.prepare;
  const claimed = await deps.pool
    .claim({
      hostId: deps.hostId,
      label: req.label,
      jobId: req.jobId,
      attempt: req.attempt,
      seal: (publicKey, _id, idleMs) => seal(publicKey, req.jobFile(idleMs)),
      prepare:
        prepare &&
        (async (m) => {
          try {
            await prepare({
              machineId: m.id,
              provider: deps.providers.get(req.label)?.name ?? '',
              hostId: deps.hostId,
              details: m.handle,
            });
          } catch (err) {
            unprepared = { id: m.id, err };
            throw err;
          }
        }),
    })
    .catch((err: unknown) => {
      if (!unprepared) throw err;
      return undefined;
    });
  if (unprepared) {
    // Rolled back, so still idle: it must not be offered again half-readied.
    await deps.pool.markDead(unprepared.id);
    const why = unprepared.err instanceof Error ? unprepared.err.message : String(unprepared.err);
    log.warn('a pool machine could not be readied for its job; booting a fresh one', {
      machineId: unprepared.id,
      why,
    });
    return { warm: false, why: `the idle VM ${unprepared.id} could not be readied for the job: ${why}` };
  }
  if (!claimed) return { warm: false, why: `no idle VM in pool ${req.label}` };
  const { machine } = claimed;
  for (const until = Date.now() + CLAIM_DELIVERY_MS; Date.now() < until;) {
    if (await deps.pool.delivered(machine.id))
      return { warm: true, handle: handleOf(machine), idleMs: claimed.idleMs };
    heartbeat('waiting for the pool machine to take its job');
    await delivery.wait(DELIVERY_LOOK_MS);
  }
  // Not taken: never hand the job a half-dead machine. markDead fails only if it was taken just now.
  if (!(await deps.pool.markDead(machine.id, false)))
    return { warm: true, handle: handleOf(machine), idleMs: claimed.idleMs };
  await destroyClaimed(deps, machine);
  log.warn('a claimed pool machine did not take its job; booting a fresh one', { machineId: machine.id });
  return {
    warm: false,
    why: `the idle VM ${machine.id} did not take the job (died or recycled as it was claimed)`,
  };
}

async function destroyClaimed(deps: PoolDeps, m: PoolMachineRow): Promise<void> {
  const provider = [...deps.providers.values()].find((p) => p.name === m.provider);
  if (provider)
    await provider.destroy({ machineId: m.id, provider: m.provider, hostId: m.hostId, details: m.handle });
  await deps.pool.remove(m.id);
  await deps.pool.db.vm.updateMany({ where: { id: m.id }, data: { destroyedAt: new Date() } });
}

/** Asks the host's PoolWorkflow to look now (after a claim: refill at once). Best effort. */
export async function kickPool(hostId: string): Promise<void> {
  try {
    await Context.current().client.workflow.getHandle(poolWorkflowId(hostId)).signal(poolKickSignal);
  } catch (err) {
    log.warn('could not tell the pool to refill; it looks again on its timer', { hostId, err });
  }
}
