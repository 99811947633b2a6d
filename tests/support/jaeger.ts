/**
 * A real Jaeger v2 (built by infra/bootstrap.sh) for tests: OTLP/gRPC receiver and query API on
 * free loopback ports, traces kept in memory. Tests export to `otlpEndpoint` and read traces
 * back through Jaeger's HTTP API.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../platform/net';
import { findTool, startToolProcess, type ToolSpec } from '../../devstack/tool-process';

export const JAEGER: ToolSpec = { binary: 'jaeger', title: 'Jaeger', envVar: 'SOLSTICE_JAEGER_BIN' };

/** A span as Jaeger's query API returns it. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  processID: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; type: string; value: unknown }[];
  logs: { fields: { key: string; value: unknown }[] }[];
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: { key: string; value: unknown }[] }>;
}

export interface Jaeger {
  /** OTLP/gRPC endpoint, e.g. http://127.0.0.1:40123 */
  otlpEndpoint: string;
  /** Query API and UI, e.g. http://127.0.0.1:40124 */
  queryUrl: string;
  /** Traces with a span of `service` (newest first), as GET /api/traces returns them. */
  traces(service: string, tags?: Record<string, string>): Promise<JaegerTrace[]>;
  stop(): Promise<void>;
}

function config(ports: { otlp: number; http: number; grpc: number; health: number }): string {
  // Only what the tests need, all on 127.0.0.1: OTLP in, memory storage, the query API out.
  // Metrics sent over OTLP are accepted and dropped (Jaeger stores traces only).
  return `
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
    metrics:
      receivers: [otlp]
      exporters: [nop]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${ports.http}
    grpc:
      endpoint: 127.0.0.1:${ports.grpc}
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:${ports.health}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${ports.otlp}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
  nop:
`;
}

export async function startJaeger(): Promise<Jaeger> {
  const binary = findTool(JAEGER);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-jaeger-'));
  const ports = {
    otlp: await freePort(),
    http: await freePort(),
    grpc: await freePort(),
    health: await freePort(),
  };
  const configFile = path.join(dir, 'config.yaml');
  fs.writeFileSync(configFile, config(ports));
  const logFile = path.join(dir, 'jaeger.log');
  const jaeger = startToolProcess(binary, ['--config', configFile], { logFile });
  const stop = async () => {
    await jaeger.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await jaeger.waitForPorts('127.0.0.1', [ports.otlp, ports.http], { timeoutMs: 60_000, what: 'jaeger' });
  } catch (err) {
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-4000) : '';
    await stop();
    throw new Error(`${(err as Error).message}\njaeger log:\n${log}`, { cause: err });
  }
  const queryUrl = `http://127.0.0.1:${ports.http}`;
  return {
    otlpEndpoint: `http://127.0.0.1:${ports.otlp}`,
    queryUrl,
    async traces(service, tags) {
      const q = new URLSearchParams({ service, limit: '100', lookback: '1h' });
      if (tags) q.set('tags', JSON.stringify(tags));
      const res = await fetch(`${queryUrl}/api/traces?${q.toString()}`);
      if (res.status === 404 || res.status === 400) return []; // service not seen yet
      if (!res.ok) throw new Error(`jaeger query failed: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { data: JaegerTrace[] | null }).data ?? [];
    },
    stop,
  };
}

/** A span's tag value by key. */
export function tag(span: JaegerSpan, key: string): unknown {
  return span.tags.find((t) => t.key === key)?.value;
}
