/**
 * Issue 21: the host tools the qemu provider runs for each VM (qemu-img, cloud-localds) are
 * bounded: one that hangs is killed with its process group at the timeout and fails the
 * attempt with a ProvisioningError, instead of holding the activity for ever. A shell stands
 * in for the tool, so the test needs neither installed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTool } from '../../../provisioning/qemu/provider';
import { MissingToolError, ProvisioningError } from '../../../platform/errors';
import { liveChildGroups } from '../../../platform/child-process';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-tool-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Running, not a zombie waiting for whoever inherited it to reap it. */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

describe('qemu provider host tools', () => {
  test('a tool that hangs is killed with its children at the timeout', async () => {
    const pidFile = path.join(dir, 'child.pid');
    // The tool's own child must die too: the whole group is killed, not only the tool.
    const err = await runTool('sh', ['-c', `sleep 300 & echo $! > ${pidFile}; wait`], 'dash', 300).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProvisioningError);
    expect((err as Error).message).toMatch(/^sh failed: sh -c took longer than 300 ms and was stopped/);
    const child = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(child)).toBe(false);
    expect(liveChildGroups()).toEqual([]);
  });

  test('a failing tool reports its stderr', async () => {
    const err = await runTool('sh', ['-c', 'echo "image is locked" >&2; exit 1'], 'dash').catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProvisioningError);
    expect((err as Error).message).toBe('sh failed: image is locked');
  });

  test('a missing tool says which package provides it', async () => {
    const err = await runTool('solstice-no-such-tool', [], 'qemu-utils').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingToolError);
    expect(err).toMatchObject({ message: expect.stringContaining('solstice-no-such-tool is not installed') });
  });
});
