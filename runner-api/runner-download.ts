/**
 * Serves the runner bundle to machines: cloud-init fetches SOLSTICE_RUNNER_URL
 * (http://<SOLSTICE_RUNNER_SERVE_ADDR>/runner.js) and runs it. node:http is enough for
 * one file.
 *
 *   GET|HEAD /runner.js  the bundle; Content-Length, ETag (sha256), Cache-Control: no-cache
 *   GET|HEAD /healthz    200 "ok"
 *   anything else        404 (405 for other methods on the two paths)
 *
 * The bundle is read into memory and re-read when its size or mtime changes, so a rebuild
 * (`npm run build`) is served without a restart. scripts/bundle-runner.mjs replaces the file
 * by rename, so a request never sees a half-written bundle.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MissingToolError } from '../platform/errors';
import { joinHostPort, splitHostPort } from '../platform/net';

export interface RunnerServerOptions {
  /** host:port to listen on; port 0 picks a free port (see the returned url). */
  addr: string;
  /** Path of the bundle, normally dist/runner/runner.js. */
  bundlePath: string;
}

export interface RunnerServer {
  /** Where machines download the runner: http://host:port/runner.js, with the real port. */
  url: string;
  port: number;
  close(): Promise<void>;
}

interface Bundle {
  body: Buffer;
  etag: string;
  size: number;
  mtimeMs: number;
}

function missingBundle(bundlePath: string, cause?: unknown): MissingToolError {
  return new MissingToolError(
    `the runner bundle ${bundlePath} does not exist`,
    'run `npm run build` (it bundles the runner into dist/runner/runner.js)',
    { cause },
  );
}

async function loadBundle(bundlePath: string, previous?: Bundle): Promise<Bundle> {
  let st;
  try {
    st = await stat(bundlePath);
  } catch (err) {
    throw missingBundle(bundlePath, err);
  }
  if (previous && previous.size === st.size && previous.mtimeMs === st.mtimeMs) return previous;
  const body = await readFile(bundlePath);
  const etag = `"sha256-${createHash('sha256').update(body).digest('hex')}"`;
  return { body, etag, size: st.size, mtimeMs: st.mtimeMs };
}

export function parseHostPort(addr: string): { host: string; port: number } {
  return splitHostPort(addr, 'runner server address');
}

/** Etag match per RFC 9110 (weak comparison is fine for a GET's If-None-Match). */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

export async function startRunnerServer(opts: RunnerServerOptions): Promise<RunnerServer> {
  const { host, port } = parseHostPort(opts.addr);
  let bundle = await loadBundle(opts.bundlePath);

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    const send = (status: number, text: string, headers: http.OutgoingHttpHeaders = {}): void => {
      const body = Buffer.from(`${text}\n`);
      res.writeHead(status, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': body.length,
        ...headers,
      });
      res.end(method === 'HEAD' ? undefined : body);
    };

    if (path !== '/runner.js' && path !== '/healthz') return send(404, 'not found');
    if (method !== 'GET' && method !== 'HEAD') return send(405, 'method not allowed', { Allow: 'GET, HEAD' });
    if (path === '/healthz') return send(200, 'ok', { 'Cache-Control': 'no-cache' });

    loadBundle(opts.bundlePath, bundle).then(
      (b) => {
        bundle = b;
        const headers = { ETag: b.etag, 'Cache-Control': 'no-cache' };
        if (etagMatches(req.headers['if-none-match'], b.etag)) {
          res.writeHead(304, headers);
          res.end();
          return;
        }
        res.writeHead(200, {
          ...headers,
          'Content-Type': 'application/javascript; charset=utf-8',
          'Content-Length': b.body.length,
        });
        res.end(method === 'HEAD' ? undefined : b.body);
      },
      (err: unknown) => {
        // Deleted since start (e.g. mid-rebuild): say so rather than serve a stale copy.
        send(503, err instanceof Error ? err.message : 'runner bundle unavailable', { 'Retry-After': '5' });
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;

  return {
    url: `http://${joinHostPort(host, actualPort)}/runner.js`,
    port: actualPort,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Let idle keep-alive connections go instead of waiting for them to time out.
        server.closeIdleConnections();
      }),
  };
}
