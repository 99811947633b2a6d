/**
 * Solstice's metrics, through the OpenTelemetry metrics API (telemetry.ts decides where they
 * go: OTLP and/or a Prometheus endpoint). Instruments are looked up per meter provider,
 * because one made before telemetry is initialized would stay a no-op forever. Durations carry
 * their unit in the name, as Prometheus expects (its exporter does not add it).
 */
import { metrics, type Counter, type Histogram, type MeterProvider } from '@opentelemetry/api';

export interface Instruments {
  /** Finalized jobs, by final state (success, failure, error, cancelled). */
  jobsFinished: Counter<{ state: string }>;
  /** Seconds from a job being recorded until its first machine is requested. */
  queueWait: Histogram;
  /** Seconds from a machine existing until its runner connected to the log service. */
  vmBoot: Histogram<{ provider: string }>;
  /** Bytes of log text stored by the log service. */
  logBytes: Counter;
  /** Webhook deliveries, by forge and what became of them. */
  webhookDeliveries: Counter<{ forge: string; outcome: WebhookOutcome }>;
}

export type WebhookOutcome =
  'enqueued' | 'ignored' | 'pong' | 'invalid' | 'unauthorized' | 'broker_unavailable';

/** Boundaries for waits and boots: a second to half an hour. */
const SECONDS_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800];

const cache = new WeakMap<MeterProvider, Instruments>();

export function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  let found = cache.get(provider);
  if (!found) {
    const meter = provider.getMeter('solstice');
    found = {
      jobsFinished: meter.createCounter('solstice.jobs.finished', {
        description: 'Jobs finalized, by final state',
      }),
      queueWait: meter.createHistogram('solstice.job.queue_wait_seconds', {
        description: 'Time from a job being recorded until its machine is requested',
        unit: 's',
        advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
      }),
      vmBoot: meter.createHistogram('solstice.vm.boot_seconds', {
        description: 'Time from a machine being created until its runner connected',
        unit: 's',
        advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
      }),
      logBytes: meter.createCounter('solstice.log.bytes', {
        description: 'Bytes of job log text stored',
        unit: 'By',
      }),
      webhookDeliveries: meter.createCounter('solstice.webhook.deliveries', {
        description: 'Webhook deliveries, by forge and outcome',
      }),
    };
    cache.set(provider, found);
  }
  return found;
}
