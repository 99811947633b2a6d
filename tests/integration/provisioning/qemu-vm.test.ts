/**
 * Jobs in real VMs (QEMU under TCG, never KVM here) booted from the image that
 * infra/images/build.sh made: cloud-init runs the seed, the guest downloads the runner from
 * the runner server, checks the job's commit out of a local repository, runs it, streams its
 * log, and the VM is torn down without a trace. The worker that made the VM is killed with
 * SIGKILL while the job runs; a new worker takes over. The runner's spans reach a real Jaeger
 * on the host through the VM's OTLP forward. One boot: TCG on a shared 2-core machine is slow.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { jobRepo } from '../../support/git-repo';
import { startJaeger, tag, type Jaeger } from '../../support/jaeger';
import { startHarness, type Harness } from '../../support/harness';
import { waitFor } from '../../support/wait';
import { builtImage, qemuProcessesOf, writeImageMap } from '../../support/vm-image';

let h: Harness;
let imageMap: string;
let firstWorker: ChildProcess;
let jaeger: Jaeger;

beforeAll(async () => {
  imageMap = writeImageMap(builtImage());
  jaeger = await startJaeger();
  h = await startHarness({
    runnerOtlpEndpoint: jaeger.otlpEndpoint,
    provider: 'qemu',
    imageMap,
    qemuAccel: 'tcg',
    bootTimeoutMs: '10m',
    jobTimeoutMs: '10m',
  });
  // A `solstice worker` process, so the test can kill it mid-job.
  firstWorker = h.spawnWorker();
});

afterAll(async () => {
  await h?.close();
  await jaeger?.stop();
  if (imageMap) fs.rmSync(imageMap, { force: true });
});

// The host registers every image map label and alias, so the capacity scheduler refuses the
// label before any provider is asked.
test('an unknown label fails the job at once, naming the labels the image map knows', async () => {
  const repo = jobRepo('echo never runs');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha, { label: 'ubuntu-99.04' });
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('error');
  expect(job.message).toMatch(/no host runs machines for label "ubuntu-99\.04"/);
  expect(job.message).toMatch(/labels of registered hosts: debian-12, linux, local/);
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
        // Time for the test to kill the worker while the job runs.
        'sleep 20',
        // The host answers on 10.0.2.2 only without restrict=on; with it, nothing gets out.
        `if curl -fsS -m 5 http://10.0.2.2:${runnerPort}/healthz; then echo NETWORK-OPEN; else echo network-restricted; fi`,
      ].join('\n'),
    );
    const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha, { label: 'linux' });

    // Once the runner is in (the job sleeps a while), the worker dies without a word.
    await waitFor(
      async () => !['queued', 'provisioning'].includes((await h.jobs.getJob(jobId))?.state ?? 'queued'),
      12 * 60_000,
      'the runner to connect',
    );
    expect((await h.jobs.getJob(jobId))?.state).toBe('running');
    firstWorker.kill('SIGKILL');
    await new Promise((r) => firstWorker.once('exit', r));
    // The VM outlived it; the new worker's sweep must leave the running job's VM alone.
    expect(qemuProcessesOf(h.cfg.hostId)).toHaveLength(1);
    await h.startWorker();

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

    // The runner inside the VM exported its span to the host's Jaeger through the forward.
    await waitFor(
      async () => (await jaeger.traces('solstice-runner', { 'solstice.job.id': jobId })).length > 0,
      60_000,
      "the runner's span in Jaeger",
    );
    const [trace] = await jaeger.traces('solstice-runner', { 'solstice.job.id': jobId });
    const runnerSpan = trace.spans.find((s) => s.operationName === 'runner job');
    expect(runnerSpan && tag(runnerSpan, 'solstice.job.id')).toBe(jobId);

    const vms = await h.db.vm.findMany({ where: { jobId } });
    expect(vms.map((v) => ({ provider: v.provider, destroyed: v.destroyedAt !== null }))).toEqual([
      { provider: 'qemu', destroyed: true },
    ]);
    expect(qemuProcessesOf(h.cfg.hostId)).toEqual([]);
    // No overlay, seed ISO or console left: the machine's folder is gone.
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  },
  25 * 60_000,
);
