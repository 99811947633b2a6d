/**
 * The guest image the QEMU tests boot: the one infra/images/build.sh made (`npm test` builds
 * it when missing), and an image map file pointing at it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { parseMachineTag } from '../../provisioning/machine-name';

const ROOT = path.resolve(__dirname, '../..');

export interface VmImage {
  dir: string;
  base: string;
  kernel: string;
  initrd: string;
}

export function builtImage(): VmImage {
  const link = path.join(process.env.SOLSTICE_TOOLS_DIR ?? path.join(ROOT, '.tools'), 'images', 'debian-12');
  if (!fs.existsSync(path.join(link, 'base.qcow2')))
    throw new Error(`no guest image at ${link}: run \`bash infra/images/build.sh\` (npm test does)`);
  const dir = fs.realpathSync(link);
  return {
    dir,
    base: path.join(dir, 'base.qcow2'),
    kernel: path.join(dir, 'vmlinuz'),
    initrd: path.join(dir, 'initrd'),
  };
}

/** Writes an image map with one image (TCG, one CPU, 1 GiB) and returns its path. */
export function writeImageMap(image: Partial<VmImage> & { base: string }, label = 'debian-12'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-imagemap-'));
  const file = path.join(dir, 'images.yaml');
  fs.writeFileSync(
    file,
    YAML.stringify({
      default_label: label,
      aliases: { linux: label },
      sizes: { small: { cpu: 1, memory: 1024 } },
      images: {
        [label]: {
          base: image.base,
          kernel: image.kernel,
          initrd: image.initrd,
          size: 'small',
          options: { accel: 'tcg' },
        },
      },
    }),
  );
  return file;
}

/** qemu processes whose environment carries a tag of this host (what a test must not leave). */
export function qemuProcessesOf(hostId: string): number[] {
  const prefix = 'SOLSTICE_MACHINE_TAG=';
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
      const env = fs.readFileSync(`/proc/${e}/environ`, 'utf8');
      const tag = env
        .split('\0')
        .find((kv) => kv.startsWith(prefix))
        ?.slice(prefix.length);
      const owner = tag ? parseMachineTag(tag)?.owner : undefined;
      if (cmd.includes('qemu-system') && owner?.hostId === hostId) pids.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
