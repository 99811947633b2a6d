/**
 * A VM host lost with its machines (its worker and every machine process SIGKILLed, as a power
 * loss looks): machine liveness notices the silent runner, the lost machine's destroy waits the
 * host TTL for a worker that never comes, and the job goes back in the queue at its old place
 * and runs on a fresh machine on the surviving host. Real Temporal, PostgreSQL, worker processes
 * and local machines, with short windows (liveness 3 s, host TTL 6 s).
 */
import type { ChildProcess } from 'node:child_process';
import { taggedPids } from '../../../provisioning/process-tree';
import { machineTag } from '../../../provisioning/machine-name';
import { readInstallationId } from '../../../storage/installation';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { gatePath, waitFor } from '../../support/wait';
import fs from 'node:fs';

let h: Harness | undefined;

afterAll(async () => {
  await h?.close();
});

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
}

test('a host lost mid-job: its job gets a fresh machine on the other host and ends success', async () => {
  const harness = (h = await startHarness());
  const env = { SOLSTICE_HOST_TTL: '6s', SOLSTICE_MACHINE_LIVENESS: '3s', SOLSTICE_HOST_MAX_MACHINES: '1' };
  const hostA = `${harness.cfg.hostId}-a`;
  const hostB = `${harness.cfg.hostId}-b`;
  const a = harness.spawnWorker({ ...env, SOLSTICE_HOST_ID: hostA });
  await waitFor(async () => (await harness.db.host.count()) === 1, 60_000, 'host a registered');
  const gate = gatePath();
  const repo = jobRepo(`echo "run on $(hostname)"; while [ ! -e ${gate} ]; do sleep 0.1; done; echo done`);
  const { jobId, workflowId } = await harness.enqueue(repo.dir, repo.sha);
  await waitFor(
    async () => (await harness.jobs.logLinesAfter(jobId, 0, 1000)).some((l) => l.text.startsWith('run on')),
    90_000,
    'the job running on host a',
  );
  const b = harness.spawnWorker({ ...env, SOLSTICE_HOST_ID: hostB });
  await waitFor(async () => (await harness.db.host.count()) === 2, 60_000, 'host b registered');

  // Host a is lost: its worker and its machine's processes at once.
  const vm = await harness.db.vm.findFirstOrThrow({ where: { jobId, attempt: 1 } });
  expect(vm.host).toBe(hostA);
  const owner = { installationId: await readInstallationId(harness.db), hostId: hostA };
  const pids = await taggedPids(machineTag(owner, vm.id));
  expect(pids.length).toBeGreaterThan(1);
  a.kill('SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      // A short-lived process of the machine (its script's `sleep`) may have ended since the scan.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  await exited(a);
  fs.writeFileSync(gate, '');

  const job = await harness.result(workflowId, jobId);
  expect(job).toMatchObject({ state: 'success', attempt: 2 });
  const second = await harness.db.vm.findFirstOrThrow({ where: { jobId, attempt: 2 } });
  expect(second.host).toBe(hostB);
  expect(second.destroyedAt).not.toBeNull();
  // The machine on the lost host is never destroyed by anyone but that host's sweeper.
  expect((await harness.db.vm.findFirstOrThrow({ where: { id: vm.id } })).destroyedAt).toBeNull();
  const log = (await harness.jobs.logLinesAfter(jobId, 0, 1000)).map((l) => l.text);
  expect(log).toContain('machine lost: no runner contact for 3 s; retrying on a fresh machine, attempt 2/2');
  expect(log.filter((l) => l === 'done')).toHaveLength(1);
  // The lease moved to host b and was given back once the job ended.
  const [lease] = await harness.db.$queryRaw<{ hostId: string; releaseReason: string }[]>`
    SELECT host_id AS "hostId", release_reason AS "releaseReason" FROM leases WHERE job_id = ${jobId}::uuid`;
  expect(lease).toEqual({ hostId: hostB, releaseReason: 'job success' });
  b.kill('SIGTERM');
  await exited(b);
});
