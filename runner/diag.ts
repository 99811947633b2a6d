/**
 * The runner's own diagnostics: plain lines on stderr, prefixed so they stand out on a VM's
 * serial console among the boot messages, with the time of day to the millisecond, so a slow
 * start can be read off the console next to the host's logs. Never pass the job token here.
 */
export function diag(message: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 23)} [solstice-runner] ${message}\n`);
}
