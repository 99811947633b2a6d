/**
 * How every long-running Solstice process stops: the first SIGTERM or SIGINT starts a drain
 * (stop taking new work, finish what is in flight, flush telemetry) and the process exits 0
 * once it is done; a second signal gives up on the drain and exits at once. Kubernetes,
 * systemd and Ctrl-C all send SIGTERM/SIGINT first, so draining on the first one is what
 * makes a rolling restart lose nothing.
 */
import type { Logger } from './logger';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
export type StopSignal = (typeof SIGNALS)[number];
const SIGNAL_NUMBER: Record<StopSignal, number> = { SIGINT: 2, SIGTERM: 15 };

/** The exit code of a command that a signal stopped: 128 + its number (130 for Ctrl-C), as shells report it. */
export function signalExitCode(signal: StopSignal): number {
  return 128 + SIGNAL_NUMBER[signal];
}

export interface StopOptions {
  log?: Logger;
  /** Where a forced exit goes; tests replace it. */
  exit?: (code: number) => void;
}

/**
 * Takes over SIGTERM and SIGINT from the moment it is made. A service makes one before it opens
 * anything: until a listener exists, a signal kills the process with its default action, so a
 * stop that came between "listening on ..." and the listener (or while the worker connected,
 * already polling) would cut off whatever had started. A signal before `serve` is remembered,
 * and `serve` then drains at once.
 */
export class StopSignals {
  private received: StopSignal | undefined;
  private serving = false;
  private readonly signalled: Promise<StopSignal>;
  private readonly handlers: { signal: StopSignal; handler: () => void }[];

  constructor(private readonly opts: StopOptions = {}) {
    const exit = opts.exit ?? ((code: number) => process.exit(code));
    let onFirst: (s: StopSignal) => void = () => undefined;
    this.signalled = new Promise<StopSignal>((resolve) => (onFirst = resolve));
    this.handlers = SIGNALS.map((signal) => {
      const handler = () => {
        if (this.received === undefined) {
          this.received = signal;
          opts.log?.info(
            { signal },
            this.serving
              ? 'draining: finishing in-flight work (send the signal again to force)'
              : 'stop requested while starting: stopping as soon as started (send the signal again to force)',
          );
          onFirst(signal);
          return;
        }
        opts.log?.warn({ signal }, 'second signal: exiting without finishing the drain');
        exit(signalExitCode(signal));
      };
      process.on(signal, handler);
      return { signal, handler };
    });
  }

  /** The first signal received so far, if any. */
  get requested(): StopSignal | undefined {
    return this.received;
  }

  /** Settles with the first signal: for a command that stops its own way instead of `serve`. */
  whenRequested(): Promise<StopSignal> {
    return this.signalled;
  }

  /**
   * Runs until the first signal (or until `done` settles), then drains with `stop`, and gives
   * the signals back. Returns 0 after a clean drain; rejects, without a drain, if `done` does.
   */
  async serve(stop: () => Promise<void>, done?: Promise<void>): Promise<number> {
    this.serving = true;
    try {
      const stoppedOnItsOwn = done?.then(() => undefined) ?? new Promise<never>(() => undefined);
      await Promise.race([this.signalled, stoppedOnItsOwn]);
      await stop();
      if (this.received) this.opts.log?.info({ signal: this.received }, 'drained; exiting');
      return 0;
    } finally {
      this.release();
    }
  }

  /** Gives SIGTERM and SIGINT back to their defaults (also for a service that failed to start). */
  release(): void {
    for (const { signal, handler } of this.handlers) process.off(signal, handler);
  }
}
