/**
 * The provisioning contract every provider (local now, QEMU next) fulfils. A provider turns
 * a MachineRequest into a running machine whose first boot runs the cloud-init user-data we
 * render, and destroys it again. Both calls must be idempotent: Temporal retries activities,
 * and a worker that crashed mid-call is replaced by another that calls again.
 */
import type { MachineHandle } from '../model/domain';

export interface MachineRequest {
  /** The machine's id; default machineIdFor(jobId, attempt). A pool machine has its own (poolMachineId). */
  machineId?: string;
  /** The job, or "" for a pool machine (it has none until claimed). */
  jobId: string;
  /** 1-based infrastructure attempt; each attempt gets a fresh machine and a fresh token. */
  attempt: number;
  label: string;
  /** The job's repository as the host sees it (a provider may have to make it reachable). */
  repoUrl: string;
  /** Rendered NoCloud seed. */
  seed: NoCloudSeed;
}

export interface NoCloudSeed {
  userData: string;
  metaData: string;
}

/** Addresses a machine uses to reach the controller's services and the job's repository. */
export interface GuestEndpoints {
  runnerUrl: string;
  contactAddr: string;
  repoUrl: string;
  /** OTLP/gRPC endpoint for the runner's spans; absent: the runner exports none. */
  otlpEndpoint?: string;
}

export interface Provider {
  readonly name: string;
  /** What in its settings works only in part; the worker logs each at start. */
  readonly setupWarnings?: readonly string[];
  /**
   * How the machine sees the host's addresses (e.g. a VM behind NAT sees forwarded ones);
   * without it, machines use the host's own.
   */
  guestEndpoints?(host: GuestEndpoints): GuestEndpoints;
  create(req: MachineRequest): Promise<MachineHandle>;
  /**
   * For a machine booted without a job (a warm-pool machine, as a job claims it): makes the
   * job's repository reachable at the URL guestEndpoints gave for it. Without it, a pool
   * machine serves only jobs whose repository URL guestEndpoints leaves as it is.
   */
  attachRepository?(handle: MachineHandle, repoUrl: string): Promise<void>;
  /** Idempotent: destroying a machine that is already gone succeeds. */
  destroy(handle: MachineHandle): Promise<void>;
  /** Serial console (or equivalent) output, for explaining machines that never phoned home. */
  consoleTail(handle: MachineHandle, maxBytes: number): Promise<string>;
}

/** A job attempt's machine (`job-<job id>-<attempt>`) or a warm-pool machine (`pool-<uuid>`). */
export const MACHINE_ID_PATTERN = /^(?:job-[0-9a-f-]{36}-\d+|pool-[0-9a-f-]{36})$/;

export function machineIdFor(jobId: string, attempt: number): string {
  return `job-${jobId}-${attempt}`;
}

export function poolMachineId(uuid: string): string {
  return `pool-${uuid}`;
}

export function requestedMachineId(req: Pick<MachineRequest, 'machineId' | 'jobId' | 'attempt'>): string {
  return req.machineId ?? machineIdFor(req.jobId, req.attempt);
}
