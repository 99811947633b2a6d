/**
 * Removes what a crash left behind on this host: machines (VMs, runner processes, their git
 * daemons) and work folders whose job no longer needs them. A worker sweeps when it starts
 * and then every SOLSTICE_SWEEP_INTERVAL. Only machines of this installation and host are
 * considered (provisioning/machine-name.ts): another installation's machine is foreign, its
 * jobs are not in our database, and it is never touched whatever its age; the sweep counts
 * them. Of our own, a machine is kept while its job is unfinished and it is the job's current
 * attempt; anything else goes, through the provider that made it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { JobStore } from '../storage/job-store';
import type { MachineHandle } from '../model/domain';
import type { Provider } from './contract';
import { parseMachineFolder, parseMachineTag, sameOwner, type MachineOwner } from './machine-name';
import { tagsWithPrefix } from './process-tree';

export interface SweepDeps {
  jobs: JobStore;
  providers: Provider[];
  owner: MachineOwner;
  workspaceRoot: string;
  /** A folder without a job row younger than this may be a machine being created. */
  minAgeMs?: number;
}

export interface SweepResult {
  swept: { machineId: string; reason: string }[];
  /** Machines of other installations or hosts (or of versions before owners) left alone. */
  foreign: number;
}

interface OwnFolder {
  provider?: string;
  ageMs: number;
}

async function machineFolders(
  root: string,
  owner: MachineOwner,
): Promise<{ own: Map<string, OwnFolder>; foreign: Set<string> }> {
  const own = new Map<string, OwnFolder>();
  const foreign = new Set<string>();
  const entries = await fs.readdir(root).catch(() => [] as string[]);
  for (const name of entries) {
    const named = parseMachineFolder(name);
    if (!named) continue;
    const dir = path.join(root, name);
    const st = await fs.stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    if (!named.owner || !sameOwner(named.owner, owner)) {
      foreign.add(name);
      continue;
    }
    const record = await fs
      .readFile(path.join(dir, 'machine.json'), 'utf8')
      .then((t) => JSON.parse(t) as { provider?: string })
      .catch(() => undefined);
    own.set(named.machineId, { provider: record?.provider, ageMs: Date.now() - st.mtimeMs });
  }
  return { own, foreign };
}

/** Why a machine must go, or undefined to keep it. */
async function verdict(jobs: JobStore, machineId: string, ageMs: number, minAgeMs: number) {
  if (machineId.startsWith('pool-')) return poolVerdict(jobs, machineId, ageMs, minAgeMs);
  const m = /^job-([0-9a-f-]{36})-(\d+)$/.exec(machineId);
  if (!m) return undefined;
  const [, jobId, attemptText] = m;
  return jobVerdict(jobs, machineId, jobId, Number(attemptText), ageMs, minAgeMs);
}

/**
 * A warm-pool machine: claimed, it is its job's machine like any other (its `vms` row says
 * which); unclaimed, it stays while its pool still has its row (the pool destroys it itself).
 */
async function poolVerdict(jobs: JobStore, machineId: string, ageMs: number, minAgeMs: number) {
  const vm = await jobs.getMachine(machineId);
  if (vm) return jobVerdict(jobs, machineId, vm.jobId, vm.attempt, ageMs, minAgeMs);
  const row = await jobs.db.poolMachine.findUnique({ where: { id: machineId }, select: { state: true } });
  if (row) return undefined;
  return ageMs > minAgeMs ? 'its pool does not know it' : undefined;
}

async function jobVerdict(
  jobs: JobStore,
  machineId: string,
  jobId: string,
  attempt: number,
  ageMs: number,
  minAgeMs: number,
) {
  const vm = await jobs.getMachine(machineId);
  if (vm?.destroyedAt) return 'already recorded as destroyed';
  const job = await jobs.getJob(jobId);
  if (!job) return ageMs > minAgeMs ? 'its job is unknown' : undefined;
  if (job.finishedAt) return `its job ended (${job.state})`;
  if (job.attempt > attempt) return `its job moved on to attempt ${job.attempt}`;
  return undefined;
}

export async function sweepOrphans(deps: SweepDeps): Promise<SweepResult> {
  const minAgeMs = deps.minAgeMs ?? 15 * 60_000;
  const folders = await machineFolders(deps.workspaceRoot, deps.owner);
  const ownTagged = new Set<string>();
  const foreign = new Set<string>(folders.foreign);
  for (const tag of (await tagsWithPrefix('')).keys()) {
    const named = parseMachineTag(tag);
    if (named?.owner && sameOwner(named.owner, deps.owner)) ownTagged.add(named.machineId);
    else if (named) foreign.add(tag);
  }
  const ids = new Set([...folders.own.keys(), ...ownTagged]);
  const swept: { machineId: string; reason: string }[] = [];
  for (const machineId of ids) {
    const dir = folders.own.get(machineId);
    // Processes without a folder: their creation is over, so no age grace.
    const reason = await verdict(deps.jobs, machineId, dir?.ageMs ?? Infinity, minAgeMs);
    if (!reason) continue;
    const provider = deps.providers.find((p) => p.name === (dir?.provider ?? 'local')) ?? deps.providers[0];
    if (!provider) continue;
    const handle: MachineHandle = {
      machineId,
      provider: provider.name,
      hostId: deps.owner.hostId,
      details: {},
    };
    await provider.destroy(handle);
    await deps.jobs.machineDestroyed(machineId);
    swept.push({ machineId, reason });
  }
  return { swept, foreign: countMachines(foreign) };
}

/** A foreign machine usually shows as a folder and as tagged processes: count it once. */
function countMachines(names: Set<string>): number {
  const machines = new Set<string>();
  for (const n of names) {
    const named = parseMachineFolder(n) ?? parseMachineTag(n);
    const o = named?.owner;
    machines.add(o ? `${o.installationId}/${o.hostId}/${named.machineId}` : (named?.machineId ?? n));
  }
  return machines.size;
}
