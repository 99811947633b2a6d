/**
 * OpenTelemetry wiring shared by every process. Exports traces over OTLP/gRPC when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set, to the console when OTEL_TRACES_EXPORTER=console,
 * and nowhere otherwise (the API stays usable; spans are simply dropped).
 */
import { trace, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { ConsoleSpanExporter, type SpanExporter } from '@opentelemetry/sdk-trace-base';

export interface Telemetry {
  tracer: Tracer;
  /** Flushes pending spans; call on shutdown. */
  shutdown(): Promise<void>;
}

let active: { sdk: NodeSDK | undefined; refs: number } | undefined;

export function chooseExporter(env: NodeJS.ProcessEnv): SpanExporter | undefined {
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return new OTLPTraceExporter({ url: env.OTEL_EXPORTER_OTLP_ENDPOINT });
  if (env.OTEL_TRACES_EXPORTER === 'console') return new ConsoleSpanExporter();
  return undefined;
}

/** Idempotent per process: `solstice up` runs several services in one process and they share one SDK. */
export function initTelemetry(serviceName: string, env: NodeJS.ProcessEnv = process.env): Telemetry {
  if (!active) {
    const exporter = chooseExporter(env);
    let sdk: NodeSDK | undefined;
    if (exporter) {
      sdk = new NodeSDK({
        serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
        traceExporter: exporter,
        // Auto-instrumentation is left out on purpose: it patches modules globally and
        // would trace Temporal's and Prisma's internals; we create the spans that matter.
        instrumentations: [],
      });
      sdk.start();
    }
    active = { sdk, refs: 0 };
  }
  const current = active;
  current.refs += 1;
  let closed = false;
  return {
    tracer: trace.getTracer(serviceName),
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
