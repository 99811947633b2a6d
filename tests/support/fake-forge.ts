/** An HTTP server standing in for a forge: it reads each call, and the test records and answers it. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ForgeCall {
  method: string;
  path: string;
  auth: string | undefined;
  body: Record<string, unknown> | undefined;
}

/** A JSON answer; without `body`, an empty one. */
export interface ForgeAnswer {
  status: number;
  body?: unknown;
}

export interface FakeForge {
  url: string;
  close(): Promise<void>;
}

export async function startFakeForge(answer: (call: ForgeCall) => ForgeAnswer): Promise<FakeForge> {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const a = answer({
        method: req.method ?? '',
        path: req.url ?? '',
        auth: req.headers.authorization,
        body: raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined,
      });
      if (a.body === undefined) return res.writeHead(a.status).end();
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
