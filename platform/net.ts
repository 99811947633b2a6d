/** Small TCP helpers for services that start other services (dev servers, tests). */
import net from 'node:net';

export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
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
  return `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
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

/** Asks the kernel for a free port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
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
