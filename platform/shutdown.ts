/**
 * How every long-running Solstice process stops: the first SIGTERM or SIGINT starts a drain
 * (stop taking new work, finish what is in flight, flush telemetry) and the process exits 0
 * once it is done; a second signal gives up on the drain and exits at once. Kubernetes,
 * systemd and Ctrl-C all send SIGTERM/SIGINT first, so draining on the first one is what
 * makes a rolling restart lose nothing.
 */
import type { Logger } from './logger';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
type StopSignal = (typeof SIGNALS)[number];
const SIGNAL_NUMBER: Record<StopSignal, number> = { SIGINT: 2, SIGTERM: 15 };

export interface ServeOptions {
  /** Stops what the process started, in reverse order; called once, after the first signal. */
  stop: () => Promise<void>;
  /** Resolves (or rejects) if the service stops on its own, e.g. a worker's fatal error. */
  done?: Promise<void>;
  log?: Logger;
  /** Where a forced exit goes; tests replace it. */
  exit?: (code: number) => void;
}

/**
 * Runs until the first SIGTERM/SIGINT (or until `done` settles), then drains with `stop`.
 * Returns the exit code: 0 after a clean drain. A second signal during the drain exits the
 * process with 128 + the signal number without waiting.
 */
export async function serveUntilSignal(opts: ServeOptions): Promise<number> {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let received: StopSignal | undefined;
  let onFirst: (s: StopSignal) => void = () => undefined;
  const signalled = new Promise<StopSignal>((resolve) => (onFirst = resolve));
  const handlers = SIGNALS.map((signal) => {
    const handler = () => {
      if (received === undefined) {
        received = signal;
        opts.log?.info({ signal }, 'draining: finishing in-flight work (send the signal again to force)');
        onFirst(signal);
        return;
      }
      opts.log?.warn({ signal }, 'second signal: exiting without finishing the drain');
      exit(128 + SIGNAL_NUMBER[signal]);
    };
    process.on(signal, handler);
    return { signal, handler };
  });
  try {
    const stoppedOnItsOwn = opts.done?.then(() => undefined) ?? new Promise<never>(() => undefined);
    await Promise.race([signalled, stoppedOnItsOwn]);
    await opts.stop();
    if (received) opts.log?.info({ signal: received }, 'drained; exiting');
    return 0;
  } finally {
    for (const { signal, handler } of handlers) process.off(signal, handler);
  }
}
