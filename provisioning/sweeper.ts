/**
 * Removes what a crash left behind on this host: machines (VMs, runner processes, their git
 * daemons) and work folders whose job no longer needs them. A worker sweeps when it starts
 * and then every SOLSTICE_SWEEP_INTERVAL. A machine is kept while its job is unfinished and
 * it is the job's current attempt; anything else goes, through the provider that made it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { JobStore } from '../storage/job-store';
import type { MachineHandle } from '../model/domain';
import type { Provider } from './contract';
import { tagsWithPrefix } from './process-tree';

export interface SweepDeps {
  jobs: JobStore;
  providers: Provider[];
  hostId: string;
  workspaceRoot: string;
  /** A folder without a job row younger than this may be a machine being created. */
  minAgeMs?: number;
}

const MACHINE_ID = /^job-([0-9a-f-]{36})-(\d+)$/;

async function machineDirs(root: string): Promise<Map<string, { provider?: string; ageMs: number }>> {
  const out = new Map<string, { provider?: string; ageMs: number }>();
  const entries = await fs.readdir(root).catch(() => [] as string[]);
  for (const name of entries) {
    if (!MACHINE_ID.test(name)) continue;
    const dir = path.join(root, name);
    const st = await fs.stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const record = await fs
      .readFile(path.join(dir, 'machine.json'), 'utf8')
      .then((t) => JSON.parse(t) as { provider?: string })
      .catch(() => undefined);
    out.set(name, { provider: record?.provider, ageMs: Date.now() - st.mtimeMs });
  }
  return out;
}

/** Why a machine must go, or undefined to keep it. */
async function verdict(jobs: JobStore, machineId: string, ageMs: number, minAgeMs: number) {
  const m = MACHINE_ID.exec(machineId);
  if (!m) return undefined;
  const [, jobId, attemptText] = m;
  const vm = await jobs.getMachine(machineId);
  if (vm?.destroyedAt) return 'already recorded as destroyed';
  const job = await jobs.getJob(jobId);
  if (!job) return ageMs > minAgeMs ? 'its job is unknown' : undefined;
  if (job.finishedAt) return `its job ended (${job.state})`;
  if (job.attempt > Number(attemptText)) return `its job moved on to attempt ${job.attempt}`;
  return undefined;
}

export async function sweepOrphans(deps: SweepDeps): Promise<{ machineId: string; reason: string }[]> {
  const minAgeMs = deps.minAgeMs ?? 15 * 60_000;
  const dirs = await machineDirs(deps.workspaceRoot);
  const prefix = `${deps.hostId}/`;
  const tagged = await tagsWithPrefix(prefix);
  const ids = new Set([...dirs.keys(), ...[...tagged.keys()].map((t) => t.slice(prefix.length))]);
  const swept: { machineId: string; reason: string }[] = [];
  for (const machineId of ids) {
    const dir = dirs.get(machineId);
    // Processes without a folder: their creation is over, so no age grace.
    const reason = await verdict(deps.jobs, machineId, dir?.ageMs ?? Infinity, minAgeMs);
    if (!reason) continue;
    const provider = deps.providers.find((p) => p.name === (dir?.provider ?? 'local')) ?? deps.providers[0];
    if (!provider) continue;
    const handle: MachineHandle = { machineId, provider: provider.name, hostId: deps.hostId, details: {} };
    await provider.destroy(handle);
    await deps.jobs.machineDestroyed(machineId);
    swept.push({ machineId, reason });
  }
  return swept;
}
