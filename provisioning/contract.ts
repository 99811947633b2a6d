/**
 * The provisioning contract every provider (local now, QEMU next) fulfils. A provider turns
 * a MachineRequest into a running machine whose first boot runs the cloud-init user-data we
 * render, and destroys it again. Both calls must be idempotent: Temporal retries activities,
 * and a worker that crashed mid-call is replaced by another that calls again.
 */
export interface MachineRequest {
  jobId: string;
  /** 1-based infrastructure attempt; each attempt gets a fresh machine and a fresh token. */
  attempt: number;
  label: string;
  /** Rendered NoCloud seed. */
  seed: NoCloudSeed;
}

export interface NoCloudSeed {
  userData: string;
  metaData: string;
}

/**
 * Everything needed to destroy a machine from any process on its host, stored in workflow
 * history and in the `vms` table. Never holds secrets.
 */
export interface MachineHandle {
  /** Unique per job attempt, e.g. `job-<uuid>-1`; also the tag on every OS object we create. */
  machineId: string;
  provider: string;
  /** The host (SOLSTICE_HOST_ID) that made it: destroy must run there. */
  hostId: string;
  /** Provider-specific, JSON-serialisable. */
  details: Record<string, string | number | boolean | null>;
}

export interface Provider {
  readonly name: string;
  create(req: MachineRequest): Promise<MachineHandle>;
  /** Idempotent: destroying a machine that is already gone succeeds. */
  destroy(handle: MachineHandle): Promise<void>;
  /** Serial console (or equivalent) output, for explaining machines that never phoned home. */
  consoleTail(handle: MachineHandle, maxBytes: number): Promise<string>;
}

export function machineIdFor(jobId: string, attempt: number): string {
  return `job-${jobId}-${attempt}`;
}
