import { createHash } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, MissingToolError } from '../../../platform/errors';
import { parseHostPort, startRunnerServer, type RunnerServer } from '../../../runner-api/runner-download';

let dir: string;
let bundlePath: string;
let server: RunnerServer | undefined;
const BODY = '#!/usr/bin/env node\nconsole.log("runner");\n';

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-runner-server-'));
  bundlePath = path.join(dir, 'runner.js');
  writeFileSync(bundlePath, BODY);
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(url: string, method = 'GET', headers: http.OutgoingHttpHeaders = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const sha256 = (s: string): string => `"sha256-${createHash('sha256').update(s).digest('hex')}"`;

describe('runner server', () => {
  test('serves the bundle with length, ETag and no-cache; port 0 gives the real port', async () => {
    server = await startRunnerServer({ addr: '127.0.0.1:0', bundlePath });
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/runner.js`);

    const res = await request(server.url);
    expect(res.status).toBe(200);
    expect(res.body).toBe(BODY);
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(BODY)));
    expect(res.headers['content-type']).toMatch(/javascript/);
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers.etag).toBe(sha256(BODY));
  });

  test('HEAD has the headers and no body; If-None-Match gives 304', async () => {
    server = await startRunnerServer({ addr: '127.0.0.1:0', bundlePath });
    const head = await request(server.url, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(BODY)));
    expect(head.headers.etag).toBe(sha256(BODY));

    const cached = await request(server.url, 'GET', { 'If-None-Match': sha256(BODY) });
    expect(cached.status).toBe(304);
    expect(cached.body).toBe('');
    const stale = await request(server.url, 'GET', { 'If-None-Match': '"sha256-other"' });
    expect(stale.status).toBe(200);
  });

  test('serves a rebuilt bundle without a restart', async () => {
    server = await startRunnerServer({ addr: '127.0.0.1:0', bundlePath });
    const next = `${BODY}// v2, longer\n`;
    writeFileSync(`${bundlePath}.tmp`, next);
    renameSync(`${bundlePath}.tmp`, bundlePath);
    const res = await request(server.url);
    expect(res.body).toBe(next);
    expect(res.headers.etag).toBe(sha256(next));
  });

  test('healthz, 404 for anything else, 405 for other methods', async () => {
    server = await startRunnerServer({ addr: '127.0.0.1:0', bundlePath });
    const base = server.url.replace(/\/runner\.js$/, '');
    expect(await request(`${base}/healthz`)).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await request(`${base}/`)).status).toBe(404);
    expect((await request(`${base}/runner.js.map`)).status).toBe(404);
    expect((await request(`${base}/../etc/passwd`)).status).toBe(404);
    const post = await request(server.url, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await request(`${server.url}?v=1`)).status).toBe(200);
  });

  test('a missing bundle is a clear error telling to build', async () => {
    const missing = path.join(dir, 'nope', 'runner.js');
    const err = await startRunnerServer({ addr: '127.0.0.1:0', bundlePath: missing }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MissingToolError);
    expect((err as MissingToolError).message).toContain(missing);
    expect((err as MissingToolError).hint).toContain('npm run build');
  });

  test('a bundle deleted after start answers 503 instead of a stale copy', async () => {
    server = await startRunnerServer({ addr: '127.0.0.1:0', bundlePath });
    rmSync(bundlePath);
    expect((await request(server.url)).status).toBe(503);
  });

  test('addresses: host:port and [v6]:port; anything else is a ConfigError', () => {
    expect(parseHostPort('0.0.0.0:8088')).toEqual({ host: '0.0.0.0', port: 8088 });
    expect(parseHostPort('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(() => parseHostPort('8088')).toThrow(ConfigError);
    expect(() => parseHostPort('host:99999')).toThrow(ConfigError);
  });

  test('listens on IPv6 loopback with a bracketed url', async () => {
    server = await startRunnerServer({ addr: '[::1]:0', bundlePath }).catch(() => undefined);
    if (!server) return; // no IPv6 on this machine
    expect(server.url).toBe(`http://[::1]:${server.port}/runner.js`);
    expect((await request(server.url)).status).toBe(200);
  });
});
