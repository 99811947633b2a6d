/**
 * The runner's spans: one for the job (child of the provisioning activity's span, whose
 * traceparent the job file carries) and one per step that ran. Exported over OTLP/gRPC to the
 * job file's `otlp_endpoint`; without one the spans are not recorded, but the traceparent
 * still goes to the log service so its spans join the job's trace.
 *
 * Nothing is registered globally and contexts are passed explicitly: the runner is small and
 * has no async context manager.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { StepResult } from '../model/runner-proto';
import { ATTR, repoAttribute } from '../model/span-attributes';
import type { JobContext } from './job-context';
import { RUNNER_VERSION } from './version';

const propagator = new W3CTraceContextPropagator();

export interface RunnerTracing {
  /** traceparent (and tracestate) of the job span, to send with every log-service call. */
  readonly carrier: Readonly<Record<string, string>>;
  /** Records a step that ran, from its result (start and duration). */
  step(result: StepResult): void;
  /** Ends the job span and sends what is pending; gives up after `timeoutMs`. */
  finish(outcome: { ok: boolean; message?: string }, timeoutMs?: number): Promise<void>;
}

export function startRunnerTracing(ctx: JobContext): RunnerTracing {
  const parent: Context = ctx.traceparent
    ? propagator.extract(
        ROOT_CONTEXT,
        { traceparent: ctx.traceparent },
        {
          get: (c: Record<string, string>, k) => c[k],
          keys: (c: Record<string, string>) => Object.keys(c),
        },
      )
    : ROOT_CONTEXT;
  let provider: BasicTracerProvider | undefined;
  let tracer: Tracer;
  if (ctx.otlpEndpoint) {
    provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        'service.name': 'solstice-runner',
        'service.version': RUNNER_VERSION,
      }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: ctx.otlpEndpoint }))],
    });
    tracer = provider.getTracer('solstice-runner', RUNNER_VERSION);
  } else {
    // The API's no-op tracer: its spans carry the parent's context, so propagation still works.
    tracer = trace.getTracer('solstice-runner');
  }
  const job: Span = tracer.startSpan(
    'runner job',
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        [ATTR.jobId]: ctx.jobId,
        [ATTR.repo]: repoAttribute(ctx.repoUrl),
        [ATTR.commit]: ctx.commitSha,
        [ATTR.runnerProcessStart]: Math.round(performance.timeOrigin),
      },
    },
    parent,
  );
  const jobContext = trace.setSpan(parent, job);
  const carrier: Record<string, string> = {};
  propagator.inject(jobContext, carrier, { set: (c: Record<string, string>, k, v) => (c[k] = v) });

  return {
    carrier,
    step(r) {
      if (!r.startedUnixMs) return;
      const span = tracer.startSpan(
        `runner step ${r.name ?? ''}`.trim(),
        {
          startTime: Number(r.startedUnixMs),
          attributes: {
            [ATTR.jobId]: ctx.jobId,
            [ATTR.step]: r.name ?? '',
            [ATTR.exitCode]: r.exitCode ?? 0,
          },
        },
        jobContext,
      );
      if (r.outcome === 'STEP_OUTCOME_FAILURE') span.setStatus({ code: SpanStatusCode.ERROR });
      span.end(Number(r.startedUnixMs) + Number(r.durationMs ?? 0));
    },
    async finish(outcome, timeoutMs = 5000) {
      if (!outcome.ok) job.setStatus({ code: SpanStatusCode.ERROR, message: outcome.message });
      job.end();
      if (!provider) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        provider.shutdown().catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    },
  };
}
