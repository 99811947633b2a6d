/**
 * Finds and stops every process that carries a machine's tag in its environment. Process
 * groups alone are not enough: a job script may call setsid, and a recorded pid may have been
 * reused by the time a fresh worker destroys a machine that a crashed worker made.
 */
import fs from 'node:fs/promises';

export const MACHINE_TAG_ENV = 'SOLSTICE_MACHINE_TAG';

export async function taggedPids(tag: string): Promise<number[]> {
  const needle = Buffer.from(`${MACHINE_TAG_ENV}=${tag}\0`);
  const entries = await fs.readdir('/proc').catch(() => [] as string[]);
  const pids: number[] = [];
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (e) => {
        const environ = await fs.readFile(`/proc/${e}/environ`).catch(() => undefined);
        if (environ && environ.includes(needle)) pids.push(Number(e));
      }),
  );
  return pids;
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone: that is the goal.
    }
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when no tagged process is left. */
export async function killTagged(tag: string, graceMs: number): Promise<{ killed: number }> {
  let pids = await taggedPids(tag);
  const killed = pids.length;
  if (killed === 0) return { killed };
  signal(pids, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  // A runner that has finished its job exits within tens of milliseconds of SIGTERM: look soon,
  // then every 100 ms.
  for (let waitMs = 10; Date.now() < deadline; waitMs = Math.min(waitMs * 2, 100)) {
    await new Promise((r) => setTimeout(r, waitMs));
    pids = await taggedPids(tag);
    if (pids.length === 0) return { killed };
  }
  for (let i = 0; i < 50 && pids.length > 0; i++) {
    signal(pids, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    pids = await taggedPids(tag);
  }
  if (pids.length > 0) throw new Error(`processes ${pids.join(', ')} tagged ${tag} survived SIGKILL`);
  return { killed };
}

/** Every tag in use that starts with `prefix` (e.g. `<host id>/`), with its processes. */
export async function tagsWithPrefix(prefix: string): Promise<Map<string, number[]>> {
  const needle = `${MACHINE_TAG_ENV}=${prefix}`;
  const entries = await fs.readdir('/proc').catch(() => [] as string[]);
  const tags = new Map<string, number[]>();
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (e) => {
        const environ = await fs.readFile(`/proc/${e}/environ`, 'utf8').catch(() => undefined);
        const entry = environ?.split('\0').find((kv) => kv.startsWith(needle));
        if (!entry) return;
        const tag = entry.slice(`${MACHINE_TAG_ENV}=`.length);
        tags.set(tag, [...(tags.get(tag) ?? []), Number(e)]);
      }),
  );
  return tags;
}
