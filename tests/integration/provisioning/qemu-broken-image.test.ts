/**
 * A guest that never boots: the image's initrd is garbage, so the kernel panics before
 * cloud-init. The job must end as an infrastructure failure after the boot timeout, retried
 * once on a fresh VM, then `error` with the serial console's tail in its log, and nothing left.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { builtImage, qemuProcessesOf, writeImageMap } from '../../support/vm-image';

let h: Harness;
let scratch: string;

beforeAll(async () => {
  const image = builtImage();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-broken-image-'));
  const initrd = path.join(scratch, 'initrd');
  fs.writeFileSync(initrd, randomBytes(64 * 1024));
  h = await startHarness({
    provider: 'qemu',
    imageMap: writeImageMap({ ...image, initrd }),
    qemuAccel: 'tcg',
    // Long enough for the kernel to reach its panic under load, short enough for a test.
    bootTimeoutMs: '50s',
  });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

test(
  'a guest that never boots: two fresh VMs, then error with the console tail in the log',
  async () => {
    const repo = jobRepo('echo never runs');
    const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
    const job = await h.result(workflowId, jobId);
    expect(job.state).toBe('error');
    expect(job.attempt).toBe(2);
    expect(job.message).toMatch(/runner did not connect within 50 s \(attempt 2\)/);

    const console = (await h.jobs.logLinesAfter(jobId, 0, 5000)).filter((l) => l.stream === 'console');
    const text = console.map((l) => l.text).join('\n');
    // One console tail per failed VM, each starting with why it was destroyed.
    expect(
      text.match(/runner did not connect within 50 s \(attempt \d\); its console ended with:/g),
    ).toHaveLength(2);
    // The serial console (its last 16 KiB) shows the kernel and why it stopped.
    expect(text).toMatch(/Initramfs unpacking failed/);
    expect(text).toMatch(/Kernel panic - not syncing: VFS: Unable to mount root fs/);

    const vms = await h.db.vm.findMany({ where: { jobId }, orderBy: { attempt: 'asc' } });
    expect(vms.map((v) => [v.attempt, v.provider, v.destroyedAt !== null])).toEqual([
      [1, 'qemu', true],
      [2, 'qemu', true],
    ]);
    expect(qemuProcessesOf(h.cfg.hostId)).toEqual([]);
    expect(await h.leftovers()).toEqual({ processes: [], workspaces: [] });
  },
  15 * 60_000,
);
