/** Small TCP helpers: host:port addresses, and for services that start other services (dev servers, tests). */
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { ConfigError } from './errors';

/**
 * `127.0.0.1:8088`, `localhost:0` or `[::1]:7233` → host (IPv6 without brackets) and port.
 * The one reader of host:port addresses; `what` names the address in the error.
 */
export function splitHostPort(addr: string, what = 'address'): { host: string; port: number } {
  const hp = readHostPort(addr);
  if (!hp) throw new ConfigError(`${what} must be host:port (e.g. 127.0.0.1:8088), got "${addr}"`);
  return hp;
}

/** splitHostPort without the error, for readers that word their own (settings). */
export function readHostPort(addr: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/i.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  return m && port <= 65535 ? { host: m[1] ?? m[2], port } : undefined;
}

/** This machine's own addresses by name or number (`[::1]` as URL.hostname spells it). */
export function isLoopbackHost(host: string): boolean {
  return ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);
}

/** The inverse of splitHostPort: brackets an IPv6 host, as URLs and gRPC addresses want it. */
export function joinHostPort(host: string, port: number | string): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Starts an HTTP server (Fastify's `listen`) on `host:port` and returns the URL it is reachable
 * at, with the port the kernel chose when `port` is 0.
 */
export async function listenHttp(
  app: { listen(o: { host: string; port: number }): Promise<unknown>; server: net.Server },
  addr: string,
): Promise<string> {
  const { host, port } = splitHostPort(addr);
  await app.listen({ host, port });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return `http://${joinHostPort(host, bound)}`;
}

export function isListening(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Where freePort picks: above the well-known services, below 32768 (see freePort). */
const FREE_PORT_FLOOR = 10_000;
const FREE_PORT_CEILING = 32_768;

/** The first port of the kernel's ephemeral range, from which it hands out ports itself. */
function ephemeralFloor(): number {
  try {
    const first = Number(
      fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
    return Number.isInteger(first) && first > 0 ? first : FREE_PORT_CEILING;
  } catch {
    return FREE_PORT_CEILING;
  }
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * Ports this process handed out recently, so two calls never give the same one before either
 * is bound. Forgotten after a minute (bound or abandoned by then), so a long-running worker that
 * asks for one per VM does not use up the range.
 */
const HANDED_OUT_FOR_MS = 60_000;
const handedOut = new Map<number, number>();

function recentlyHandedOut(port: number, now: number): boolean {
  const until = handedOut.get(port);
  if (until === undefined) return false;
  if (until > now) return true;
  handedOut.delete(port);
  return false;
}

/**
 * A free port on `host` for a server that starts a little later (a dev server, a test's stack).
 * Picked at random below the kernel's ephemeral range and checked by binding it (and not handed out again within a minute): a port the
 * kernel chose itself (listen on 0) can be handed to an outgoing connection, or to another
 * process's port-0 listener, between the check and the server's bind, which failed a CI run with
 * EADDRINUSE; the kernel never hands out ports below its range. Also below 32768, which
 * Temporal needs (it keeps membership ports in a PostgreSQL smallint). Where the ephemeral range
 * leaves no room, the kernel picks.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const top = Math.min(ephemeralFloor(), FREE_PORT_CEILING);
  if (top - FREE_PORT_FLOOR < 1000) return kernelPort(host);
  for (let tries = 0; tries < 200; tries++) {
    const port = FREE_PORT_FLOOR + randomInt(top - FREE_PORT_FLOOR);
    if (recentlyHandedOut(port, Date.now())) continue;
    if (await canBind(host, port)) {
      handedOut.set(port, Date.now() + HANDED_OUT_FOR_MS);
      return port;
    }
  }
  return kernelPort(host);
}

function kernelPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function waitForPort(
  host: string,
  port: number,
  opts: { timeoutMs: number; isAlive?: () => boolean; what: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (await isListening(host, port, 500)) return;
    if (opts.isAlive && !opts.isAlive())
      throw new Error(`${opts.what} exited before listening on ${host}:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${opts.what} did not listen on ${host}:${port} within ${opts.timeoutMs} ms`);
}
