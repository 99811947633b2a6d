/**
 * Warm pools with the local provider (pre-started runner processes): the pool logic of
 * activities/pool.ts, capacity/pool-store.ts and the log service's WaitForAssignment, fast and
 * without VMs. QEMU runs the same code (docs/qemu.md, "Warm pools").
 */
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { taggedPids, tagsWithPrefix } from '../../../provisioning/process-tree';
import { machineTag } from '../../../provisioning/machine-name';
import { readInstallationId } from '../../../storage/installation';
import { PoolStore, type PoolMachineRow } from '../../../capacity/pool-store';
import { jobRepo, makeRepo } from '../../support/git-repo';
import { cliEnv, runCli } from '../../support/cli';
import { startHarness, type Harness } from '../../support/harness';
import { gatePath, waitFor } from '../../support/wait';
import {
  SECRET_IN_THE_CLEAR,
  SECRET_LOOK_CLEAN,
  SECRET_LOOKS,
  secretLookScript,
  writeJobSecrets,
  type SecretLook,
} from '../../support/secret-isolation';
import { statusQuery } from '../../../workflows/signals';

let h: Harness | undefined;

afterEach(async () => {
  if (h) await destroyPool(h);
  await h?.close();
  h = undefined;
});

/** The runner processes of a machine, by its tag. */
async function pidsOf(harness: Harness, machineId: string): Promise<number[]> {
  const owner = { installationId: await readInstallationId(harness.db), hostId: harness.cfg.hostId };
  return taggedPids(machineTag(owner, machineId));
}

async function poolRows(harness: Harness): Promise<PoolMachineRow[]> {
  return new PoolStore(harness.db).list();
}

async function idle(harness: Harness): Promise<PoolMachineRow[]> {
  return (await poolRows(harness)).filter(
    (m) => m.state === 'idle' && m.silentMs !== null && m.silentMs < 3000,
  );
}

/** Stops the worker, then kills every machine of the host that is left: tests leave no process behind. */
async function destroyPool(harness: Harness): Promise<void> {
  await harness.stopWorker();
  const owner = { installationId: await readInstallationId(harness.db), hostId: harness.cfg.hostId };
  for (const pids of (await tagsWithPrefix(machineTag(owner, ''))).values())
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
}

async function logTexts(harness: Harness, jobId: string): Promise<string[]> {
  return (await harness.jobs.logLinesAfter(jobId, 0, 1000)).map((l) => l.text);
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
}

test('with min_idle 1 a job starts in the idle machine and succeeds, and a new idle machine boots right after the claim', async () => {
  const harness = (h = await startHarness({ pools: 'local=1' }));
  await harness.startWorker();
  await waitFor(async () => (await idle(harness)).length === 1, 60_000, 'an idle pool machine');
  const [first] = await idle(harness);
  // Idle: a runner waiting, with no job, no job token and no secrets in its machine.
  expect(first.claimedJobId).toBeNull();
  expect(await pidsOf(harness, first.id)).not.toEqual([]);

  const repo = jobRepo('echo hello from the pool');
  const started = Date.now();
  const { jobId, workflowId } = await harness.enqueue(repo.dir, repo.sha);
  const job = await harness.result(workflowId, jobId);
  expect(job.state).toBe('success');
  const texts = await logTexts(harness, jobId);
  expect(texts[0]).toMatch(/^warm VM from pool local, idle \d+ s$/);
  expect(texts).toContain('hello from the pool');
  // The job ran on the pool machine, which served it alone and was then destroyed.
  const vms = await harness.db.vm.findMany({ where: { jobId } });
  expect(vms.map((v) => v.id)).toEqual([first.id]);
  expect(vms[0].destroyedAt).not.toBeNull();
  expect(await pidsOf(harness, first.id)).toEqual([]);
  // Refilled: another machine is idle (it was booted at the claim, not at the next timer).
  await waitFor(
    async () => (await idle(harness)).some((m) => m.id !== first.id),
    30_000,
    'a fresh idle machine',
  );
  const [next] = await idle(harness);
  expect(next.createdAt.getTime()).toBeLessThan(started + 20_000);

  const status = await runCli(['pool', 'status'], cliEnv(harness.cfg));
  expect(status.stderr).toBe('');
  expect(status.stdout).toMatch(new RegExp(`^${harness.cfg.hostId}\\s+local\\s+idle\\s+${next.id}\\s`, 'm'));
});

test('two jobs back to back with min_idle 1: one starts warm, one cold, both succeed', async () => {
  // Two slots: the idle machine's (the first job takes it over) and one more, so the second
  // boots cold, and the pool refills only once a slot is free again.
  const harness = (h = await startHarness({ pools: 'local=1', hostMaxMachines: '2' }));
  await harness.startWorker();
  await waitFor(async () => (await idle(harness)).length === 1, 60_000, 'an idle pool machine');
  const gate = gatePath();
  const repo = jobRepo(`echo started; while [ ! -e ${gate} ]; do sleep 0.1; done`);
  const a = await harness.enqueue(repo.dir, repo.sha);
  const b = await harness.enqueue(repo.dir, repo.sha);
  await waitFor(
    async () =>
      (await logTexts(harness, a.jobId)).includes('started') &&
      (await logTexts(harness, b.jobId)).includes('started'),
    90_000,
    'both jobs running',
  );
  fs.writeFileSync(gate, '');
  expect((await harness.result(a.workflowId, a.jobId)).state).toBe('success');
  expect((await harness.result(b.workflowId, b.jobId)).state).toBe('success');
  const firsts = [(await logTexts(harness, a.jobId))[0], (await logTexts(harness, b.jobId))[0]];
  expect(firsts.filter((t) => /^warm VM from pool local, idle \d+ s$/.test(t))).toHaveLength(1);
  expect(firsts.filter((t) => t === 'cold boot: no idle VM in pool local')).toHaveLength(1);
  // The workflow says which it was too (its status query, and the details the Web UI shows).
  const origins = await Promise.all(
    [a, b].map(
      async (j) => (await harness.client.workflow.getHandle(j.workflowId).query(statusQuery)).machineOrigin,
    ),
  );
  expect(origins.sort()).toEqual(firsts.sort());
});

test('a pool machine killed while idle is noticed and replaced', async () => {
  const harness = (h = await startHarness({ pools: 'local=1', machineLivenessMs: '3s' }));
  await harness.startWorker();
  await waitFor(async () => (await idle(harness)).length === 1, 60_000, 'an idle pool machine');
  const [victim] = await idle(harness);
  for (const pid of await pidsOf(harness, victim.id)) process.kill(pid, 'SIGKILL');
  await waitFor(
    async () => {
      const rows = await poolRows(harness);
      return !rows.some((m) => m.id === victim.id) && (await idle(harness)).length === 1;
    },
    60_000,
    'the dead machine replaced',
  );
  // A job still gets a live machine.
  const repo = jobRepo('echo after the replacement');
  const { jobId, workflowId } = await harness.enqueue(repo.dir, repo.sha);
  expect((await harness.result(workflowId, jobId)).state).toBe('success');
  expect((await logTexts(harness, jobId))[0]).toMatch(/^warm VM from pool local/);
});

test('a worker SIGKILLed with idle pool machines: on restart the live one is adopted, a dead one replaced, none leak', async () => {
  const harness = (h = await startHarness());
  const env = { SOLSTICE_POOLS: 'local=2', SOLSTICE_MACHINE_LIVENESS: '3s' };
  let worker = harness.spawnWorker(env);
  await waitFor(async () => (await idle(harness)).length === 2, 90_000, 'two idle pool machines');
  const [live, dead] = await idle(harness);
  worker.kill('SIGKILL');
  await exited(worker);
  // While no worker runs, one of the machines dies.
  for (const pid of await pidsOf(harness, dead.id)) process.kill(pid, 'SIGKILL');
  worker = harness.spawnWorker(env);
  try {
    await waitFor(
      async () => {
        const rows = await idle(harness);
        return rows.length === 2 && rows.some((m) => m.id === live.id) && !rows.some((m) => m.id === dead.id);
      },
      90_000,
      'the live machine adopted and the dead one replaced',
    );
    expect(await pidsOf(harness, dead.id)).toEqual([]);
    // The adopted machine serves a job.
    const repo = jobRepo('echo on the adopted machine');
    const { jobId, workflowId } = await harness.enqueue(repo.dir, repo.sha);
    expect((await harness.result(workflowId, jobId)).state).toBe('success');
    expect((await logTexts(harness, jobId))[0]).toMatch(/^warm VM from pool local/);
    // Every machine process left belongs to a pool machine the pool knows.
    const known = new Set((await poolRows(harness)).map((m) => m.id));
    const dirs = fs.readdirSync(harness.workspaceRoot);
    expect(dirs.every((d) => [...known].some((id) => d.endsWith(id)))).toBe(true);
  } finally {
    worker.kill('SIGKILL');
    await exited(worker);
  }
});

test('no job sees another job’s token or secrets, nor the pool token, from inside its machine', async () => {
  const dir = fs.mkdtempSync('/tmp/solstice-pool-secrets-');
  const file = `${dir}/secrets.yaml`;
  writeJobSecrets(file);
  try {
    const harness = (h = await startHarness({ pools: 'local=1', secretsFile: file }));
    await harness.startWorker();
    const check = (look: SecretLook) =>
      makeRepo({
        '.solstice/workflow.kdl': `
          job "j" {
            secrets "${look.mine}"
            step "look" run="sh ./look.sh"
          }
        `,
        // The local machine's `/` is $SOLSTICE_ROOT: its job file holds this job's token only.
        'look.sh': secretLookScript(look, { root: '$SOLSTICE_ROOT' }).join('\n'),
      });
    for (const look of SECRET_LOOKS) {
      await waitFor(async () => (await idle(harness)).length === 1, 60_000, 'an idle pool machine');
      const repo = check(look);
      const { pipelineId, workflowId } = await harness.startPipeline(repo.dir, repo.sha);
      expect((await harness.pipelineResult(workflowId, pipelineId)).state).toBe('success');
      const [job] = await harness.pipelines.listJobs(pipelineId);
      const texts = await logTexts(harness, job.jobId as string);
      expect(texts[0]).toMatch(/^warm VM from pool local/);
      for (const line of SECRET_LOOK_CLEAN) expect(texts).toContain(line);
    }
    // The database held assignments only sealed: no pool row has a secret in the clear.
    const rows = await harness.db.$queryRaw<
      { assignment: string | null }[]
    >`SELECT assignment FROM pool_machines`;
    for (const r of rows) expect(`${r.assignment}`).not.toMatch(SECRET_IN_THE_CLEAR);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
