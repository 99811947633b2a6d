/**
 * The life of a long-running command (worker, log service, bridge, ...): a logger and telemetry
 * under its name, then serving until a signal and closing what it opened, in order.
 */
import { createLogger, type Logger } from '../platform/logger';
import { StopSignals } from '../platform/shutdown';
import { initTelemetry, type Telemetry, type TelemetryConfig } from '../platform/telemetry';

type Closer = () => Promise<unknown>;

export class ServiceProcess {
  readonly log: Logger;
  readonly telemetry: Telemetry | undefined;
  private readonly signals: StopSignals;

  /**
   * Make it first, before the command opens anything: from here on SIGTERM/SIGINT are stop
   * requests, so one that comes while the service starts is drained rather than fatal.
   * Without `telemetry` the process exports nothing (the job page and runner server do not).
   */
  constructor(name: string, telemetry?: { cfg: TelemetryConfig; name?: string }) {
    this.log = createLogger(name);
    this.signals = new StopSignals({ log: this.log });
    this.telemetry = telemetry ? initTelemetry(telemetry.name ?? name, telemetry.cfg) : undefined;
  }

  /** Runs until a signal (or until `done` settles), then closes in order; telemetry flushes last. */
  serve(closers: Closer[], done?: Promise<void>): Promise<number> {
    return this.signals.serve(async () => {
      for (const close of closers) await close();
      await this.telemetry?.shutdown();
    }, done);
  }
}
