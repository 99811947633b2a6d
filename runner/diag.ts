/**
 * The runner's own diagnostics: plain lines on stderr, prefixed so they stand out on a VM's
 * serial console among the boot messages. Never pass the job token here.
 */
export function diag(message: string): void {
  process.stderr.write(`[solstice-runner] ${message}\n`);
}
