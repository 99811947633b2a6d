/**
 * The capacity scheduler's decision, without I/O: which waiting jobs get a machine slot on
 * which host. The database side (capacity/store.ts) runs it under one lock, so two
 * workers can never both hand out the same slot.
 *
 * Rules: requests are served first come, first served; a request whose label is at its limit
 * waits without holding up other labels; a request goes to the live host serving its label with
 * the fewest machines (then the lowest id), and never to a host at its `maxMachines`.
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
}

export interface PlanInput {
  /** Oldest first. */
  waiting: readonly WaitingRequest[];
  /** Hosts that may take machines now (live, not stopped). */
  hosts: readonly HostCapacity[];
  held: readonly HeldLease[];
  /** Most machines of a label at once, over all hosts; labels not named are unlimited. */
  labelLimits: Readonly<Record<string, number>>;
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

export function planGrants(input: PlanInput): Grant[] {
  const perHost = new Map<string, number>();
  const perLabel = new Map<string, number>();
  for (const l of input.held) {
    bump(perHost, l.hostId);
    bump(perLabel, l.label);
  }
  const hosts = [...input.hosts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const grants: Grant[] = [];
  for (const req of input.waiting) {
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
