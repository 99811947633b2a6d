/**
 * The orphan sweeper: machines (processes and folders) of this installation and host whose job
 * has ended or moved on to a newer attempt are destroyed; the machine of a job that still runs
 * is kept; machines of another installation on the same host id are never touched.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startHarness, type Harness } from '../../support/harness';
import { LocalProvider } from '../../../provisioning/local';
import { MACHINE_TAG_ENV, taggedPids, killTagged } from '../../../provisioning/process-tree';
import { sweepOrphans } from '../../../provisioning/sweeper';
import { machineIdFor } from '../../../provisioning/contract';
import { machineFolderName, machineTag, type MachineOwner } from '../../../provisioning/machine-name';
import { readInstallationId } from '../../../storage/installation';

let h: Harness;
let owner: MachineOwner;

beforeAll(async () => {
  h = await startHarness();
  owner = { installationId: await readInstallationId(h.db), hostId: h.cfg.hostId };
});

afterAll(async () => {
  await h?.close();
});

async function recordJob(attempt: number): Promise<string> {
  const jobId = randomUUID();
  await h.jobs.recordJob(
    {
      jobId,
      source: 'manual',
      repoUrl: '/nowhere',
      commitSha: 'a'.repeat(40),
      label: 'local',
      timeoutMs: 60_000,
      bootTimeoutMs: 60_000,
      maxMachineAttempts: 2,
    },
    `wf-${jobId}`,
  );
  await h.jobs.beginAttempt(jobId, attempt, `hash-${jobId}`);
  return jobId;
}

/** A stand-in machine: a folder and a detached, tagged process, as a provider leaves them. */
async function fakeMachine(machineId: string, withProcess = true, of: MachineOwner = owner): Promise<void> {
  const dir = path.join(h.workspaceRoot, machineFolderName(of, machineId));
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'console.log'), 'booting\n');
  // Old enough that the sweeper's grace for machines being created does not apply.
  const old = new Date(Date.now() - 24 * 3600_000);
  fs.utimesSync(dir, old, old);
  if (!withProcess) return;
  const child = spawn('sleep', ['600'], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH, [MACHINE_TAG_ENV]: machineTag(of, machineId) },
  });
  child.unref();
  for (let i = 0; i < 50 && (await taggedPids(machineTag(of, machineId))).length === 0; i++)
    await new Promise((r) => setTimeout(r, 100));
}

test('destroys machines of ended jobs and older attempts, keeps the running one', async () => {
  const ended = await recordJob(1);
  await h.jobs.finalize(ended, { state: 'success', exitCode: 0 });
  const retried = await recordJob(2);
  const running = await recordJob(1);

  const endedMachine = machineIdFor(ended, 1);
  const oldAttempt = machineIdFor(retried, 1);
  const current = machineIdFor(retried, 2);
  const live = machineIdFor(running, 1);
  await fakeMachine(endedMachine);
  await fakeMachine(oldAttempt, false);
  await fakeMachine(current);
  await fakeMachine(live);
  // Not a machine: the sweeper must not touch it.
  fs.mkdirSync(path.join(h.workspaceRoot, 'notes'));

  // Another installation on this host, with the same host id: its jobs are not in our
  // database, so "its job is unknown" would be true of them, and wrong.
  const other: MachineOwner = { installationId: 'a0a0a0a0a0a0', hostId: h.cfg.hostId };
  const foreign = machineIdFor(randomUUID(), 1);
  const foreignFolderOnly = machineIdFor(randomUUID(), 1);
  await fakeMachine(foreign, true, other);
  await fakeMachine(foreignFolderOnly, false, other);

  const provider = new LocalProvider({ workspaceRoot: h.workspaceRoot, owner, killGraceMs: 1000 });
  const folder = (m: string, of = owner) => machineFolderName(of, m);
  try {
    const first = await sweepOrphans({
      jobs: h.jobs,
      providers: [provider],
      owner,
      workspaceRoot: h.workspaceRoot,
    });
    expect(Object.fromEntries(first.swept.map((s) => [s.machineId, s.reason]))).toEqual({
      [endedMachine]: 'its job ended (success)',
      [oldAttempt]: 'its job moved on to attempt 2',
    });
    // At least our two: the machines of any other installation on this host (another test run,
    // another stack) are foreign too, and are counted, never touched.
    expect(first.foreign).toBeGreaterThanOrEqual(2);
    expect(fs.readdirSync(h.workspaceRoot).sort()).toEqual(
      [
        folder(current),
        folder(live),
        folder(foreign, other),
        folder(foreignFolderOnly, other),
        'notes',
      ].sort(),
    );
    expect(await taggedPids(machineTag(owner, endedMachine))).toEqual([]);
    expect((await taggedPids(machineTag(owner, live))).length).toBe(1);
    expect((await taggedPids(machineTag(other, foreign))).length).toBe(1);

    // A second sweep finds nothing more to do, and still leaves the foreign machines alone.
    const second = await sweepOrphans({
      jobs: h.jobs,
      providers: [provider],
      owner,
      workspaceRoot: h.workspaceRoot,
    });
    expect(second.swept).toEqual([]);
    expect(second.foreign).toBeGreaterThanOrEqual(2);
    expect((await taggedPids(machineTag(other, foreign))).length).toBe(1);
  } finally {
    for (const m of [current, live]) await killTagged(machineTag(owner, m), 1000);
    await killTagged(machineTag(other, foreign), 1000);
    fs.rmSync(path.join(h.workspaceRoot, 'notes'), { recursive: true, force: true });
  }
});
