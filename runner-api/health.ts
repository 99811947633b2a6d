/**
 * `grpc.health.v1.Health` on the log service's port (the maintained `grpc-health-check`
 * implementation), reporting whether the service can do its work: SERVING only while every
 * readiness check (database, Temporal, AMQP when configured) passed its last run. Load balancers
 * and `grpc_health_probe` ask for the overall status ('') or for `runner.v1.RunnerService`.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Client } from '@temporalio/client';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { checkDatabase } from '../storage/db-connection';
import type { Logger } from '../platform/logger';
import { RUNNER_SERVICE_NAME } from '../model/runner-proto';

export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency is usable; rejects (with a reason) when not. */
  run(): Promise<void>;
}

export const HEALTH_INTERVAL_MS = 5000;
const CHECK_TIMEOUT_MS = 3000;

export function databaseCheck(url: string): ReadinessCheck {
  return { name: 'database', run: () => checkDatabase(url, { timeoutMs: CHECK_TIMEOUT_MS }) };
}

export function temporalCheck(client: Client): ReadinessCheck {
  return {
    name: 'temporal',
    run: async () => {
      // A cheap frontend call that needs the server up (its own health API is not on ConnectionLike).
      await client.workflowService.getSystemInfo({});
    },
  };
}

export function amqpCheck(url: string): ReadinessCheck {
  return {
    name: 'amqp',
    run: async () => {
      // Loaded here: only a log service given a broker checks it.
      const { default: amqp } = await import('amqplib');
      const conn = await amqp.connect(url, { timeout: CHECK_TIMEOUT_MS });
      conn.on('error', () => undefined);
      await conn.close();
    },
  };
}

function withTimeout(p: Promise<void>, ms: number, name: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} check did not answer within ${ms}ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class HealthReporter {
  private readonly impl = new HealthImplementation({
    '': 'NOT_SERVING',
    [RUNNER_SERVICE_NAME]: 'NOT_SERVING',
  });
  private timer: NodeJS.Timeout | undefined;
  private status: ServingStatus = 'NOT_SERVING';
  private lastFailures = '';

  constructor(
    private readonly checks: readonly ReadinessCheck[],
    private readonly log: Logger,
    private readonly intervalMs: number = HEALTH_INTERVAL_MS,
  ) {}

  addToServer(server: grpc.Server): void {
    this.impl.addToServer(server);
  }

  /** Runs the checks once, now and then every interval. */
  async start(): Promise<void> {
    await this.refresh();
    const tick = (): void => {
      this.timer = setTimeout(() => void this.refresh().finally(() => this.timer && tick()), this.intervalMs);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  async refresh(): Promise<ServingStatus> {
    const results = await Promise.allSettled(
      this.checks.map((c) => withTimeout(c.run(), CHECK_TIMEOUT_MS + 500, c.name)),
    );
    const failures = results.flatMap((r, i) =>
      r.status === 'rejected'
        ? [`${this.checks[i].name}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`]
        : [],
    );
    const status: ServingStatus = failures.length === 0 ? 'SERVING' : 'NOT_SERVING';
    const summary = failures.join('; ');
    if (status !== this.status || summary !== this.lastFailures) {
      if (status === 'SERVING') this.log.info('log service ready: all readiness checks pass');
      else this.log.warn({ failures }, 'log service not ready');
    }
    this.status = status;
    this.lastFailures = summary;
    this.impl.setStatus('', status);
    this.impl.setStatus(RUNNER_SERVICE_NAME, status);
    return status;
  }
}
