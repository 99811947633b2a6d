/**
 * Machine liveness and whose fault an ending is, with real processes (local provider), a short
 * liveness window (3 s) and the real runner: a machine whose runner and script are SIGKILLed
 * (how a crashed VM looks) is noticed, destroyed and replaced; when attempts run out the job is
 * `error`, never `failure`; a step silent for three windows is alive; a runner told to stop
 * (SIGTERM to every process of the machine, as a destroy or a shutdown does) ends the job
 * `error`, not `failure (exit code 143)`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machineTag } from '../../../provisioning/machine-name';
import { taggedPids } from '../../../provisioning/process-tree';
import { readInstallationId } from '../../../storage/installation';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { waitFor } from '../../support/wait';

const LIVENESS_S = 3;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ machineLivenessMs: `${LIVENESS_S}s` });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
});

async function logText(jobId: string): Promise<string[]> {
  return (await h.jobs.logLinesAfter(jobId, 0, 10_000)).map((l) => l.text);
}

/** The processes of the job's machine of `attempt`, once it has some. */
async function machinePids(jobId: string, attempt: number): Promise<number[]> {
  const vm = await h.db.vm.findFirst({ where: { jobId, attempt } });
  if (!vm) return [];
  const owner = { installationId: await readInstallationId(h.db), hostId: h.cfg.hostId };
  return taggedPids(machineTag(owner, vm.id));
}

/** Kills every process of the attempt's machine at once: runner and script, as a crash does. */
async function crash(jobId: string, attempt: number, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const pids = await machinePids(jobId, attempt);
  expect(pids.length).toBeGreaterThan(1); // the runner and at least the script
  for (const pid of pids) process.kill(pid, sig);
}

/** A script that says which run of it this is: the first hangs (ticking), a later one passes. */
function secondRunPasses(): { script: string } {
  const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-live-')), 'ran');
  return {
    script: [
      `if [ -e ${marker} ]; then echo "second run"; exit 0; fi`,
      `touch ${marker}`,
      'echo "first run"',
      'for i in $(seq 300); do echo tick; sleep 1; done',
    ].join('\n'),
  };
}

test('SIGKILLed runner and script: the job goes on on a fresh machine (attempt 2) and ends success', async () => {
  const repo = jobRepo(secondRunPasses().script);
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  await waitFor(async () => (await logText(jobId)).includes('first run'), 120_000, 'first run');
  await crash(jobId, 1);
  const killedAt = Date.now();
  await waitFor(async () => (await logText(jobId)).includes('second run'), 120_000, 'second run');
  // Liveness (3 s) plus a look, a destroy and a boot; generous for a shared machine.
  expect(Date.now() - killedAt).toBeLessThan(90_000);

  const job = await h.result(workflowId, jobId);
  expect(job).toMatchObject({ state: 'success', attempt: 2 });
  const log = await logText(jobId);
  const lost = log.indexOf(
    `machine lost: no runner contact for ${LIVENESS_S} s; retrying on a fresh machine, attempt 2/2`,
  );
  expect(lost).toBeGreaterThan(log.indexOf('first run'));
  expect(lost).toBeLessThan(log.indexOf('second run'));
  // Both attempts' runners introduced themselves in the one log.
  expect(log.filter((l) => l.startsWith('solstice-runner '))).toHaveLength(2);
  expect(await h.db.vm.count({ where: { jobId, destroyedAt: null } })).toBe(0);
  expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
});

test('a machine lost on every attempt: the job ends error, never failure, its step interrupted', async () => {
  const repo = jobRepo('echo "run started"; for i in $(seq 300); do echo tick; sleep 1; done');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  for (const attempt of [1, 2]) {
    await waitFor(
      async () => (await logText(jobId)).filter((l) => l === 'run started').length === attempt,
      120_000,
      `attempt ${attempt} running`,
    );
    await crash(jobId, attempt);
  }
  const job = await h.result(workflowId, jobId);
  expect(job).toMatchObject({
    state: 'error',
    attempt: 2,
    exitCode: null,
    message: `machine lost: no runner contact for ${LIVENESS_S} s; giving up after 2/2 attempts`,
  });
  expect(await h.jobs.listSteps(jobId)).toEqual([
    expect.objectContaining({ index: 1, outcome: 'interrupted' }),
  ]);
  const log = await logText(jobId);
  expect(log).toContain(
    `machine lost: no runner contact for ${LIVENESS_S} s; retrying on a fresh machine, attempt 2/2`,
  );
  expect(log).toContain(`machine lost: no runner contact for ${LIVENESS_S} s; giving up after 2/2 attempts`);
  expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
});

test('a step silent for three liveness windows is alive: the job ends success on its first machine', async () => {
  const repo = jobRepo(`echo before; sleep ${3 * LIVENESS_S + 2}; echo after`);
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  const job = await h.result(workflowId, jobId);
  expect(job).toMatchObject({ state: 'success', attempt: 1 });
  const log = await logText(jobId);
  expect(log).toEqual(expect.arrayContaining(['before', 'after']));
  expect(log.some((l) => l.startsWith('machine lost'))).toBe(false);
});

test('SIGTERM to every process of the machine (a shutdown or a destroy): error, not the script’s 143', async () => {
  const repo = jobRepo('echo "run started"; sleep 300');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  await waitFor(async () => (await logText(jobId)).includes('run started'), 120_000, 'job running');
  await crash(jobId, 1, 'SIGTERM');
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('error');
  expect(job.attempt).toBe(1);
  expect(job.message).toMatch(/^the runner received SIGTERM .*exit code 143 is not the job's own$/);
  expect(await h.jobs.listSteps(jobId)).toEqual([
    expect.objectContaining({ index: 1, outcome: 'interrupted', exitCode: 143 }),
  ]);
  expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
});
