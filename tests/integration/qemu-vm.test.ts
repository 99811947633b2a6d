/**
 * Jobs in real VMs (QEMU under TCG, never KVM here) booted from the image that
 * infra/images/build.sh made: cloud-init runs the seed, the guest downloads the runner from
 * the runner server, checks the job's commit out of a local repository, runs it, streams its
 * log, and the VM is torn down without a trace. One boot: TCG on a shared 2-core machine is slow.
 */
import fs from 'node:fs';
import { jobRepo } from '../support/git-repo';
import { startHarness, type Harness } from '../support/harness';
import { builtImage, qemuProcessesOf, writeImageMap } from '../support/vm-image';

let h: Harness;
let imageMap: string;

beforeAll(async () => {
  imageMap = writeImageMap(builtImage());
  h = await startHarness({
    provider: 'qemu',
    imageMap,
    qemuAccel: 'tcg',
    bootTimeoutMs: '5m',
    jobTimeoutMs: '10m',
  });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
  if (imageMap) fs.rmSync(imageMap, { force: true });
});

test('an unknown label fails the job at once, naming the labels the image map knows', async () => {
  const repo = jobRepo('echo never runs');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha, { label: 'ubuntu-99.04' });
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('error');
  expect(job.message).toMatch(/no machine image or provider for label "ubuntu-99\.04"/);
  expect(job.message).toMatch(/known labels: debian-12, linux, local/);
  expect(await h.db.vm.count({ where: { jobId } })).toBe(0);
});

test(
  'a job runs in a fresh VM: runner from the runner server, commit from a local repository, log streamed back, nothing left',
  async () => {
    const runnerPort = new URL(h.cfg.runnerUrl).port;
    const repo = jobRepo(
      [
        'echo "hello from $(hostname) on $(uname -r)"',
        'echo "node $(node --version)"',
        'test -f /etc/solstice/job.yaml && echo "job file present"',
        // The host answers on 10.0.2.2 only without restrict=on; with it, nothing gets out.
        `if curl -fsS -m 5 http://10.0.2.2:${runnerPort}/healthz; then echo NETWORK-OPEN; else echo network-restricted; fi`,
      ].join('\n'),
    );
    const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha, { label: 'linux' });
    const job = await h.result(workflowId, jobId);
    const lines = await h.jobs.logLinesAfter(jobId, 0, 5000);
    const log = lines.map((l) => l.text).join('\n');
    expect({ state: job.state, message: job.message }).toEqual({ state: 'success', message: null });
    expect(job.attempt).toBe(1);
    expect(log).toContain(`hello from job-${jobId}-1 on `);
    expect(log).toMatch(/on [\d.-]+-cloud-amd64/);
    expect(log).toMatch(/node v18\./);
    expect(log).toContain('job file present');
    expect(log).toContain('network-restricted');
    expect(log).not.toContain('NETWORK-OPEN');

    const vms = await h.db.vm.findMany({ where: { jobId } });
    expect(vms.map((v) => ({ provider: v.provider, destroyed: v.destroyedAt !== null }))).toEqual([
      { provider: 'qemu', destroyed: true },
    ]);
    expect(qemuProcessesOf(h.cfg.hostId)).toEqual([]);
    // No overlay, seed ISO or console left: the machine's folder is gone.
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  },
  15 * 60_000,
);
