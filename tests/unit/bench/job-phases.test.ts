import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { context, trace } from '@opentelemetry/api';
import { breakdown, spansOfJob } from '../../../bench/job-phases';
import { startSpanCollector, type SpanCollector } from '../../../bench/span-collector';
import { ATTR } from '../../../model/span-attributes';

let collector: SpanCollector;
beforeAll(async () => {
  collector = await startSpanCollector();
});
afterAll(async () => {
  await collector.close();
});

/** One job's spans as the stack names them, at these offsets (ms) from t0, sent over real OTLP. */
async function exportJob(jobId: string, t0: number, withRunner = true): Promise<void> {
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: collector.endpoint }))],
  });
  const tracer = provider.getTracer('test');
  const root = tracer.startSpan('StartWorkflow:JobWorkflow', { startTime: t0 });
  const ctx = trace.setSpan(context.active(), root);
  const span = (name: string, from: number, to: number, attributes: Record<string, string | number> = {}) =>
    tracer.startSpan(name, { startTime: t0 + from, attributes }, ctx).end(t0 + to);
  span('RunActivity:recordJob', 30, 40);
  span('RunActivity:requestLease', 60, 70);
  span('RunActivity:provisionMachine', 90, 100, { [ATTR.jobId]: jobId });
  if (withRunner) {
    span('runner job', 300, 1500, { [ATTR.jobId]: jobId, [ATTR.runnerProcessStart]: t0 + 120 });
    span('runner step job.sh', 400, 900);
  }
  span('log-service StartJob', 310, 320);
  span('log-service ReportStep', 405, 410);
  span('log-service ReportStep', 905, 910);
  span('log-service FinishJob', 950, 960);
  span('RunActivity:destroyMachine', 980, 1000);
  span('RunActivity:releaseLease', 1010, 1020);
  span('RunActivity:finalizeJob', 1020, 1050);
  root.end(t0 + 5);
  await provider.shutdown();
}

test('a job exported over OTLP breaks down into phases that add up to enqueue → finalize', async () => {
  const t0 = Date.now();
  await exportJob('11111111-1111-1111-1111-111111111111', t0);
  await exportJob('22222222-2222-2222-2222-222222222222', t0 + 10_000);
  const spans = spansOfJob(collector.spans, '11111111-1111-1111-1111-111111111111');
  expect(spans).toHaveLength(13);
  const b = breakdown(spans, t0);
  expect(b.phases).toEqual({
    'workflow start': 30,
    record: 10,
    lease: 30,
    provision: 30,
    'runner download': 20,
    'runner start': 180,
    'runner connect': 20,
    checkout: 80,
    script: 500,
    'log drain': 60,
    destroy: 40,
    finalize: 50,
  });
  expect(b.totalMs).toBe(1050);
  expect(b.scriptMs).toBe(500);
});

test("without the runner's own spans, connect runs from provisioning and the script between step reports", async () => {
  const t0 = Date.now() + 20_000;
  await exportJob('33333333-3333-3333-3333-333333333333', t0, false);
  const b = breakdown(spansOfJob(collector.spans, '33333333-3333-3333-3333-333333333333'), t0);
  expect(b.phases['runner download']).toBeUndefined();
  expect(b.phases['runner connect']).toBe(220);
  expect(b.phases.checkout).toBe(85);
  expect(b.phases.script).toBe(500);
  expect(b.totalMs).toBe(1050);
});

test('a trace without the runner says which span is missing', () => {
  expect(() => breakdown([], Date.now())).toThrow(/no "RunActivity:recordJob" span/);
});
