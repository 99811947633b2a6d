/**
 * A VM that dies mid-job (its qemu-system process is SIGKILLed, as a host crash or the OOM
 * killer would): the workflow notices the silence within the liveness window, destroys what is
 * left of the machine, and runs the job on a fresh VM, which passes. Nothing stays behind: no
 * qemu process, no overlay, seed or console. Real VMs under TCG from the built guest image.
 */
import fs from 'node:fs';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { waitFor } from '../../support/wait';
import { builtImage, qemuProcessesOf, writeImageMap } from '../../support/vm-image';

// Generous: a TCG guest on a shared 2-core machine can stall for seconds.
const LIVENESS_S = 30;
let h: Harness;
let imageMap: string;

beforeAll(async () => {
  imageMap = writeImageMap(builtImage());
  h = await startHarness({
    provider: 'qemu',
    imageMap,
    qemuAccel: 'tcg',
    bootTimeoutMs: '10m',
    jobTimeoutMs: '20m',
    machineLivenessMs: `${LIVENESS_S}s`,
  });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
  if (imageMap) fs.rmSync(imageMap, { force: true });
});

test(
  'killing the qemu-system process of a running job: a fresh VM runs the job, nothing is left',
  async () => {
    // The guest's hostname is the machine id, job-<id>-<attempt>: only the first VM hangs.
    const repo = jobRepo(
      [
        'echo "running on $(hostname)"',
        'case "$(hostname)" in *-1) sleep 1200 ;; esac',
        'echo finished',
      ].join('\n'),
    );
    const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha, { label: 'linux' });
    const lines = async (): Promise<string[]> =>
      (await h.jobs.logLinesAfter(jobId, 0, 5000)).map((l) => l.text);
    await waitFor(
      async () => (await lines()).includes(`running on job-${jobId}-1`),
      15 * 60_000,
      'the job running in its first VM',
    );
    const [qemu] = qemuProcessesOf(h.cfg.hostId);
    expect(qemu).toBeDefined();
    process.kill(qemu, 'SIGKILL');

    const job = await h.result(workflowId, jobId);
    expect(job).toMatchObject({ state: 'success', attempt: 2 });
    const log = await lines();
    expect(log).toContain(
      `machine lost: no runner contact for ${LIVENESS_S} s; retrying on a fresh machine, attempt 2/2`,
    );
    expect(log).toContain(`running on job-${jobId}-2`);
    expect(log).toContain('finished');

    const vms = await h.db.vm.findMany({ where: { jobId }, orderBy: { attempt: 'asc' } });
    expect(vms.map((v) => ({ attempt: v.attempt, destroyed: v.destroyedAt !== null }))).toEqual([
      { attempt: 1, destroyed: true },
      { attempt: 2, destroyed: true },
    ]);
    expect(qemuProcessesOf(h.cfg.hostId)).toEqual([]);
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  },
  40 * 60_000,
);
