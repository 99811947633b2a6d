/**
 * The orphan sweeper: machines (processes and folders) of this host whose job has ended or
 * moved on to a newer attempt are destroyed; the machine of a job that still runs is kept.
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

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
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
async function fakeMachine(machineId: string, withProcess = true): Promise<void> {
  fs.mkdirSync(path.join(h.workspaceRoot, machineId), { recursive: true });
  fs.writeFileSync(path.join(h.workspaceRoot, machineId, 'console.log'), 'booting\n');
  if (!withProcess) return;
  const child = spawn('sleep', ['600'], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH, [MACHINE_TAG_ENV]: `${h.cfg.hostId}/${machineId}` },
  });
  child.unref();
  for (let i = 0; i < 50 && (await taggedPids(`${h.cfg.hostId}/${machineId}`)).length === 0; i++)
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

  const provider = new LocalProvider({
    workspaceRoot: h.workspaceRoot,
    hostId: h.cfg.hostId,
    killGraceMs: 1000,
  });
  try {
    const swept = await sweepOrphans({
      jobs: h.jobs,
      providers: [provider],
      hostId: h.cfg.hostId,
      workspaceRoot: h.workspaceRoot,
    });
    expect(Object.fromEntries(swept.map((s) => [s.machineId, s.reason]))).toEqual({
      [endedMachine]: 'its job ended (success)',
      [oldAttempt]: 'its job moved on to attempt 2',
    });
    expect(fs.readdirSync(h.workspaceRoot).sort()).toEqual([current, live, 'notes'].sort());
    expect(await taggedPids(`${h.cfg.hostId}/${endedMachine}`)).toEqual([]);
    expect((await taggedPids(`${h.cfg.hostId}/${live}`)).length).toBe(1);

    // A second sweep finds nothing more to do.
    expect(
      await sweepOrphans({
        jobs: h.jobs,
        providers: [provider],
        hostId: h.cfg.hostId,
        workspaceRoot: h.workspaceRoot,
      }),
    ).toEqual([]);
  } finally {
    for (const m of [current, live]) await killTagged(`${h.cfg.hostId}/${m}`, 1000);
    fs.rmSync(path.join(h.workspaceRoot, 'notes'), { recursive: true, force: true });
  }
});
