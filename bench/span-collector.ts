/**
 * An OTLP/gRPC trace receiver in the bench's own process, so a benchmark reads the spans every
 * part of the stack already exports (worker, log service, and the runner in its own process)
 * without a collector or Jaeger. Only the fields the breakdown needs are declared; protobufjs
 * skips the rest of OTLP's `ExportTraceServiceRequest` as unknown fields.
 */
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const OTLP = protobuf.Root.fromJSON({
  nested: {
    otlp: {
      nested: {
        ExportTraceServiceRequest: {
          fields: { resourceSpans: { rule: 'repeated', type: 'ResourceSpans', id: 1 } },
        },
        ResourceSpans: { fields: { scopeSpans: { rule: 'repeated', type: 'ScopeSpans', id: 2 } } },
        ScopeSpans: { fields: { spans: { rule: 'repeated', type: 'Span', id: 2 } } },
        Span: {
          fields: {
            traceId: { type: 'bytes', id: 1 },
            spanId: { type: 'bytes', id: 2 },
            parentSpanId: { type: 'bytes', id: 4 },
            name: { type: 'string', id: 5 },
            startTimeUnixNano: { type: 'fixed64', id: 7 },
            endTimeUnixNano: { type: 'fixed64', id: 8 },
            attributes: { rule: 'repeated', type: 'KeyValue', id: 9 },
          },
        },
        KeyValue: { fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } } },
        AnyValue: {
          oneofs: { value: { oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue'] } },
          fields: {
            stringValue: { type: 'string', id: 1 },
            boolValue: { type: 'bool', id: 2 },
            intValue: { type: 'int64', id: 3 },
            doubleValue: { type: 'double', id: 4 },
          },
        },
      },
    },
  },
});
const Request = OTLP.lookupType('otlp.ExportTraceServiceRequest');

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** Epoch milliseconds, with sub-millisecond precision. */
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean>;
}

interface RawSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: { key: string; value?: Record<string, string | number | boolean> }[];
}

const nanosToMs = (n: string | undefined): number => Number(BigInt(n ?? '0') / 1000n) / 1000;

function decode(buf: Buffer): CollectedSpan[] {
  const req = Request.toObject(Request.decode(buf), { longs: String, bytes: String, defaults: false }) as {
    resourceSpans?: { scopeSpans?: { spans?: RawSpan[] }[] }[];
  };
  const hex = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('hex');
  return (req.resourceSpans ?? []).flatMap((r) =>
    (r.scopeSpans ?? []).flatMap((s) =>
      (s.spans ?? []).map((sp) => ({
        traceId: hex(sp.traceId),
        spanId: hex(sp.spanId),
        parentSpanId: hex(sp.parentSpanId),
        name: sp.name ?? '',
        startMs: nanosToMs(sp.startTimeUnixNano),
        endMs: nanosToMs(sp.endTimeUnixNano),
        attributes: Object.fromEntries(
          (sp.attributes ?? []).map((a) => {
            const v = a.value ?? {};
            const value =
              v.stringValue ?? v.boolValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue);
            return [a.key, value ?? ''];
          }),
        ),
      })),
    ),
  );
}

export interface SpanCollector {
  /** http://127.0.0.1:<port>, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  endpoint: string;
  spans: CollectedSpan[];
  close(): Promise<void>;
}

export async function startSpanCollector(): Promise<SpanCollector> {
  const spans: CollectedSpan[] = [];
  const server = new grpc.Server();
  server.addService(
    {
      Export: {
        path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        // An empty ExportTraceServiceResponse: everything accepted.
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: () => ({}),
      },
    },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, object>, callback: grpc.sendUnaryData<object>) => {
        try {
          spans.push(...decode(call.request));
          callback(null, {});
        } catch (err) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: String(err) });
        }
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
