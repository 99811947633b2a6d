/**
 * The capacity scheduler's decision, without I/O: which waiting jobs get a machine slot on
 * which host. The database side (capacity/store.ts) runs it under one lock, so two
 * workers can never both hand out the same slot.
 *
 * Rules: requests are served first come, first served; a request whose label is at its limit
 * waits without holding up other labels; a request goes to the live host serving its label with
 * the fewest machines (then the lowest id), and never to a host at its `maxMachines`.
 *
 * Warm pools: an idle pool machine occupies a slot of its host and label like a granted lease.
 * A request of its label takes it over first (the grant names the machine, which is then
 * reserved for the job): the slot passes from the machine to the job's lease, so a host full
 * of idle machines still serves the jobs they are waiting for.
 */

export interface HostCapacity {
  id: string;
  labels: readonly string[];
  maxMachines: number;
}

export interface WaitingRequest {
  jobId: string;
  label: string;
}

/** A granted, unreleased lease: it occupies a slot of its label and of its host. */
export interface HeldLease {
  label: string;
  hostId: string;
}

export interface Grant {
  jobId: string;
  hostId: string;
  /** The idle pool machine reserved for the job, when one was taken over. */
  poolMachineId?: string;
}

/** A pool machine neither reserved nor claimed: it holds a slot of its host and label. */
export interface PoolSlot {
  id: string;
  hostId: string;
  label: string;
  /** Booted and waiting right now, so a job may take it over. */
  idle: boolean;
}

export interface PlanInput {
  /** Oldest first. */
  waiting: readonly WaitingRequest[];
  /** Hosts that may take machines now (live, not stopped). */
  hosts: readonly HostCapacity[];
  held: readonly HeldLease[];
  /** Most machines of a label at once, over all hosts; labels not named are unlimited. */
  labelLimits: Readonly<Record<string, number>>;
  /** Unreserved pool machines, oldest first. */
  pool?: readonly PoolSlot[];
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

export function planGrants(input: PlanInput): Grant[] {
  const perHost = new Map<string, number>();
  const perLabel = new Map<string, number>();
  for (const l of [...input.held, ...(input.pool ?? [])]) {
    bump(perHost, l.hostId);
    bump(perLabel, l.label);
  }
  const hosts = [...input.hosts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const takeable = (input.pool ?? []).filter((m) => m.idle);
  const grants: Grant[] = [];
  for (const req of input.waiting) {
    const warm = takeable.findIndex(
      (m) => m.label === req.label && hosts.some((h) => h.id === m.hostId && h.labels.includes(req.label)),
    );
    if (warm >= 0) {
      const [m] = takeable.splice(warm, 1);
      grants.push({ jobId: req.jobId, hostId: m.hostId, poolMachineId: m.id });
      continue;
    }
    const limit = input.labelLimits[req.label];
    if (limit !== undefined && (perLabel.get(req.label) ?? 0) >= limit) continue;
    let best: HostCapacity | undefined;
    for (const h of hosts) {
      const used = perHost.get(h.id) ?? 0;
      if (!h.labels.includes(req.label) || used >= h.maxMachines) continue;
      if (!best || used < (perHost.get(best.id) ?? 0)) best = h;
    }
    if (!best) continue;
    grants.push({ jobId: req.jobId, hostId: best.id });
    bump(perHost, best.id);
    bump(perLabel, req.label);
  }
  return grants;
}

/**
 * Whether a new pool machine of `label` fits on `hostId` once `grants` are made: a free slot of
 * the host and of the label, and no request left waiting that the host could serve (queued jobs
 * come before idle machines). `evict`: requests the host serves are waiting and it is full, so
 * an idle machine should make room.
 */
export function poolRoom(
  input: PlanInput,
  grants: readonly Grant[],
  hostId: string,
  label: string,
): 'room' | 'full' | 'evict' {
  const host = input.hosts.find((h) => h.id === hostId);
  if (!host) return 'full';
  const granted = new Set(grants.map((g) => g.jobId));
  const taken = new Set(grants.flatMap((g) => (g.poolMachineId ? [g.poolMachineId] : [])));
  const stillWaiting = input.waiting.filter((w) => !granted.has(w.jobId) && host.labels.includes(w.label));
  const pool = (input.pool ?? []).filter((m) => !taken.has(m.id));
  const onHost =
    input.held.filter((l) => l.hostId === hostId).length +
    pool.filter((m) => m.hostId === hostId).length +
    grants.filter((g) => g.hostId === hostId && !g.poolMachineId).length;
  if (stillWaiting.length > 0)
    return onHost >= host.maxMachines && pool.some((m) => m.hostId === hostId) ? 'evict' : 'full';
  if (onHost >= host.maxMachines) return 'full';
  const limit = input.labelLimits[label];
  if (limit !== undefined) {
    const grantedOfLabel = grants.filter(
      (g) => !g.poolMachineId && input.waiting.find((w) => w.jobId === g.jobId)?.label === label,
    ).length;
    const ofLabel =
      input.held.filter((l) => l.label === label).length +
      pool.filter((m) => m.label === label).length +
      grantedOfLabel;
    if (ofLabel >= limit) return 'full';
  }
  return 'room';
}

/**
 * 1-based place of each still-waiting request among the waiting requests of its label
 * (what `solstice status` shows as the queue position).
 */
export function queuePositions(waiting: readonly WaitingRequest[]): Map<string, number> {
  const seen = new Map<string, number>();
  const out = new Map<string, number>();
  for (const r of waiting) {
    bump(seen, r.label);
    out.set(r.jobId, seen.get(r.label) as number);
  }
  return out;
}
