import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Polls until `check` holds; fails with `what` after the timeout. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 60_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A path a job script can wait on (`while [ ! -e $gate ]`), outside every folder tests inspect. */
export function gatePath(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-gate-')), 'open');
}
