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
import { FsBlobStore } from '../../../storage/blob-store';
import { createLogger } from '../../../platform/logger';
import { startJobPage } from '../../../web/job-page/server';
import { cliEnv, runCli } from '../../support/cli';
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
  const reason = `machine lost: no runner contact for ${LIVENESS_S} s; retrying on a fresh machine, attempt 2/2`;
  const lost = log.indexOf(reason);
  expect(lost).toBeGreaterThan(log.indexOf('first run'));
  expect(lost).toBeLessThan(log.indexOf('second run'));
  // Both attempts' runners introduced themselves in the one log.
  expect(log.filter((l) => l.startsWith('solstice-runner '))).toHaveLength(2);
  expect(await h.db.vm.count({ where: { jobId, destroyedAt: null } })).toBe(0);
  expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });

  // The step table keeps both attempts: the first's step interrupted (its log ends before the
  // reason), the second's a success, and why the first machine was given up.
  const table = await h.jobs.stepTable(jobId);
  expect(table).toEqual({
    steps: [
      expect.objectContaining({ attempt: 1, index: 1, outcome: 'interrupted', lastSeq: lost }),
      expect.objectContaining({ attempt: 2, index: 1, outcome: 'success', exitCode: 0 }),
    ],
    lost: [{ attempt: 1, message: reason, logSeq: lost + 1 }],
  });
  await expectReadersShowBothAttempts(jobId, reason);
});

/** `status`, `logs`, `logs --step` and the job page each show both attempts and the reason. */
async function expectReadersShowBothAttempts(jobId: string, reason: string): Promise<void> {
  const env = cliEnv(h.cfg);
  const status = await runCli(['status', jobId], env);
  expect(status.code).toBe(0);
  const steps = status.stdout
    .slice(status.stdout.indexOf('\nsteps\n') + 1)
    .trimEnd()
    .split('\n');
  expect(steps.map((l) => l.trim().replace(/ +/g, ' '))).toEqual([
    'steps',
    'attempt 1',
    expect.stringMatching(/^1\. \.solstice\/job\.sh interrupted/),
    reason,
    'attempt 2',
    expect.stringMatching(/^1\. \.solstice\/job\.sh success exit 0/),
  ]);

  const whole = (await runCli(['logs', jobId], env)).stdout.split('\n');
  expect(whole[0]).toBe('── attempt 1 ──');
  expect(whole.indexOf('── attempt 2 ──')).toBe(whole.indexOf(reason) + 1);
  expect(whole.indexOf('second run')).toBeGreaterThan(whole.indexOf('── attempt 2 ──'));

  const step = await runCli(['logs', jobId, '--step', '1'], env);
  expect(step.code).toBe(0);
  const out = step.stdout.split('\n');
  const order = [
    '── attempt 1: step 1 ".solstice/job.sh" ──',
    'first run',
    reason,
    '── attempt 2: step 1 ".solstice/job.sh" ──',
    'second run',
  ].map((l) => out.indexOf(l));
  expect(order[0]).toBe(0);
  expect(order).toEqual([...order].sort((a, b) => a - b));
  expect(out.filter((l) => l.startsWith('solstice-runner '))).toEqual([]);

  const log = createLogger('test');
  log.level = 'warn';
  const page = await startJobPage({
    addr: '127.0.0.1:0',
    jobs: h.jobs,
    blobs: new FsBlobStore(h.cfg.blobFsRoot),
    log,
  });
  try {
    const html = await (await fetch(`${page.url}/jobs/${jobId}`)).text();
    const table = html.slice(html.indexOf('<table id="steps"'), html.indexOf('</table>'));
    const rows = [...table.matchAll(/<tr class="([^"]+)">(.*?)<\/tr>/g)].map(([, cls, cells]) => [
      cls,
      cells
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim(),
    ]);
    expect(rows).toEqual([
      ['attempt', 'attempt 1'],
      ['step-interrupted', expect.stringMatching(/^1 \.solstice\/job\.sh interrupted/)],
      ['lost', reason],
      ['attempt', 'attempt 2'],
      ['step-success', expect.stringMatching(/^1 \.solstice\/job\.sh success 0/)],
    ]);
  } finally {
    await page.close();
  }
}

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
    expect.objectContaining({ attempt: 1, index: 1, outcome: 'interrupted' }),
    expect.objectContaining({ attempt: 2, index: 1, outcome: 'interrupted' }),
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
