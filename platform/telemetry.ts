/**
 * OpenTelemetry wiring shared by every process, and the only place that sets it up.
 *
 * Traces: exported over OTLP/gRPC when an endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT),
 * to the console when OTEL_TRACES_EXPORTER=console, and nowhere otherwise (the API stays usable;
 * spans are simply dropped). Metrics (see metrics.ts for the instruments): over OTLP to the same
 * endpoint, and scraped from a Prometheus endpoint when SOLSTICE_METRICS_ADDR is set.
 *
 * Temporal's own spans (workflow start, workflow and activity execution) come from
 * @temporalio/interceptors-opentelemetry, wired through `temporalClientInterceptors` and
 * `temporalWorkerTracing` below.
 */
import { context, propagation, trace, type Context, type Tracer } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { IMetricReader } from '@opentelemetry/sdk-metrics';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { Config } from './config';
import { joinHostPort, splitHostPort } from './net';

export type TelemetryConfig = Pick<Config, 'otlpEndpoint' | 'metricsAddr' | 'tracesExporter' | 'serviceName'>;

export interface Telemetry {
  tracer: Tracer;
  /** Where Prometheus scrapes this process (http://host:port/metrics), when enabled. */
  metricsUrl: string | undefined;
  /** Flushes pending spans and metrics; call on shutdown. */
  shutdown(): Promise<void>;
}

interface Active {
  sdk: NodeSDK | undefined;
  refs: number;
  /** Set when spans are exported: Temporal's interceptors are installed only then. */
  spans: { processor: SpanProcessor; resource: Resource } | undefined;
  metricsUrl: string | undefined;
}

let active: Active | undefined;

/*
 * The SDK, its exporters and Temporal's interceptors are loaded only when something is exported:
 * with the worker SDK (platform/temporal.ts) they were 30 of the 146 MiB the log service held
 * at start, and a process that exports nothing needs only the API, whose tracer is then a no-op.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- deferred on purpose (above) */
const sdkTrace = () =>
  require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
const temporalOtel = () =>
  require('@temporalio/interceptors-opentelemetry') as typeof import('@temporalio/interceptors-opentelemetry');
const otlpTraces = () =>
  require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc');
const otlpMetrics = () =>
  require('@opentelemetry/exporter-metrics-otlp-grpc') as typeof import('@opentelemetry/exporter-metrics-otlp-grpc');
const prometheus = () =>
  require('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus');
const sdkMetrics = () => require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
const resources = () => require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
const sdkNode = () => require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
/* eslint-enable @typescript-eslint/no-require-imports */

export function chooseExporter(
  cfg: Pick<Config, 'otlpEndpoint' | 'tracesExporter'>,
): SpanExporter | undefined {
  if (cfg.otlpEndpoint) {
    return new (otlpTraces().OTLPTraceExporter)({ url: cfg.otlpEndpoint });
  }
  if (cfg.tracesExporter === 'console') return new (sdkTrace().ConsoleSpanExporter)();
  return undefined;
}

function metricReaders(cfg: TelemetryConfig): { readers: IMetricReader[]; url: string | undefined } {
  const readers: IMetricReader[] = [];
  let url: string | undefined;
  if (cfg.otlpEndpoint) {
    const { PeriodicExportingMetricReader } = sdkMetrics();
    const { OTLPMetricExporter } = otlpMetrics();
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: cfg.otlpEndpoint }),
        exportIntervalMillis: 15_000,
      }),
    );
  }
  if (cfg.metricsAddr) {
    const { host, port } = splitHostPort(cfg.metricsAddr);
    readers.push(new (prometheus().PrometheusExporter)({ host, port }));
    url = `http://${joinHostPort(host, port)}/metrics`;
  }
  return { readers, url };
}

/**
 * Idempotent per process: `solstice up` runs several services in one process and they share
 * one SDK (and so one service name and one metrics endpoint).
 */
export function initTelemetry(serviceName: string, cfg: TelemetryConfig): Telemetry {
  if (!active) {
    const exporter = chooseExporter(cfg);
    const { readers, url } = metricReaders(cfg);
    const processor = exporter ? new (sdkTrace().BatchSpanProcessor)(exporter) : undefined;
    let sdk: NodeSDK | undefined;
    let resource: Resource | undefined;
    if (processor || readers.length > 0) {
      const { envDetector, hostDetector, osDetector, resourceFromAttributes } = resources();
      const { NodeSDK } = sdkNode();
      resource = resourceFromAttributes({ 'service.name': cfg.serviceName ?? serviceName });
      sdk = new NodeSDK({
        resource,
        // Not the process detector: it records the command line, where a secret given as a
        // flag (--forgejo-webhook-secret) would end up in every span.
        resourceDetectors: [envDetector, hostDetector, osDetector],
        spanProcessors: processor ? [processor] : [],
        metricReaders: readers,
        // Logs go through pino; without this the SDK would set up an OTLP log exporter from env.
        logRecordProcessors: [],
        // Auto-instrumentation is left out on purpose: it patches modules globally and
        // would trace Temporal's and Prisma's internals; we create the spans that matter.
        instrumentations: [],
      });
      sdk.start();
    }
    active = {
      sdk,
      refs: 0,
      spans: processor && resource ? { processor, resource } : undefined,
      metricsUrl: url,
    };
  }
  const current = active;
  current.refs += 1;
  let closed = false;
  return {
    tracer: trace.getTracer(serviceName),
    metricsUrl: current.metricsUrl,
    async shutdown() {
      if (closed) return;
      closed = true;
      current.refs -= 1;
      if (current.refs === 0) {
        active = undefined;
        await current.sdk?.shutdown();
      }
    },
  };
}

/** The tracer for Solstice's own spans (a no-op one while telemetry is not initialized). */
export function tracer(): Tracer {
  return trace.getTracer('solstice');
}

/** W3C trace context (traceparent, tracestate) of `ctx`, for message headers and job files. */
export function injectTraceContext(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** The context a W3C `traceparent`/`tracestate` carrier (message headers, gRPC metadata) names. */
export function extractTraceContext(carrier: Record<string, unknown>): Context {
  return propagation.extract(context.active(), carrier, {
    keys: (c) => Object.keys(c),
    get: (c, key) => {
      const v = c[key];
      if (Buffer.isBuffer(v)) return v.toString('utf8');
      if (Array.isArray(v)) return v.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
      return typeof v === 'string' ? v : undefined;
    },
  });
}

/** Client interceptors that carry the active trace into workflow starts, signals and queries. */
export function temporalClientInterceptors(): { workflow: WorkflowClientInterceptor[] } | undefined {
  if (!active?.spans) return undefined;
  return { workflow: [new (temporalOtel().OpenTelemetryWorkflowClientInterceptor)()] };
}

/**
 * Worker options that trace workflows and activities: the activity interceptors, the workflow
 * interceptor module (bundled into the workflow sandbox), and the sink through which the
 * sandbox hands its spans to this process's exporter. Undefined while spans go nowhere.
 */
export function temporalWorkerTracing():
  { interceptors: WorkerInterceptors; sinks: InjectedSinks<Record<string, never>> } | undefined {
  if (!active?.spans) return undefined;
  const { processor, resource } = active.spans;
  const {
    makeWorkflowExporter,
    OpenTelemetryActivityInboundInterceptor,
    OpenTelemetryActivityOutboundInterceptor,
  } = temporalOtel();
  // The interceptors package is built on OpenTelemetry SDK 1.x and hands workflow spans over
  // in 1.x shape; our SDK is 2.x, whose exporters read the parent and scope under new names.
  const adapter: SpanProcessor = {
    onStart: () => undefined,
    onEnd: (span) => processor.onEnd(toSdk2Span(span)),
    forceFlush: () => processor.forceFlush(),
    shutdown: () => Promise.resolve(),
  };
  const sink = makeWorkflowExporter(
    adapter as unknown as Parameters<typeof makeWorkflowExporter>[0],
    resource as unknown as Parameters<typeof makeWorkflowExporter>[1],
  );
  return {
    interceptors: {
      workflowModules: [require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors')],
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: sink } as unknown as InjectedSinks<Record<string, never>>,
  };
}

/** A span as SDK 1.x shaped it (`parentSpanId`, `instrumentationLibrary`) in SDK 2.x shape. */
function toSdk2Span(span: ReadableSpan): ReadableSpan {
  const old = span as ReadableSpan & {
    parentSpanId?: string;
    instrumentationLibrary?: ReadableSpan['instrumentationScope'];
  };
  if (old.parentSpanContext || !old.parentSpanId) {
    return old.instrumentationScope ? span : { ...spread(span), instrumentationScope: scopeOf(old) };
  }
  const own = span.spanContext();
  return {
    ...spread(span),
    instrumentationScope: old.instrumentationScope ?? scopeOf(old),
    parentSpanContext: { traceId: own.traceId, spanId: old.parentSpanId, traceFlags: own.traceFlags },
  };
}

function scopeOf(span: { instrumentationLibrary?: ReadableSpan['instrumentationScope'] }) {
  return span.instrumentationLibrary ?? { name: '@temporalio/interceptors-opentelemetry' };
}

/** A plain copy that keeps the `spanContext()` method (spreading would keep it too, but typed). */
function spread(span: ReadableSpan): ReadableSpan {
  return { ...span, spanContext: () => span.spanContext() };
}
