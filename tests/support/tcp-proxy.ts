/**
 * A TCP proxy on 127.0.0.1 for tests that need to break connections: everything is passed
 * through to the target until `killAll()` destroys every open connection (both sides), as a
 * dropped network path or a restarted load balancer would.
 */
import net from 'node:net';

export interface TcpProxy {
  /** host:port to connect to instead of the target. */
  address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Destroys every open connection; returns how many there were. */
  killAll(): number;
  /** Kills every connection and refuses new ones (a service that went down) until `unblock`. */
  block(): void;
  unblock(): void;
  close(): Promise<void>;
}

/**
 * `target` is asked on every new connection, so it may be known only after the proxy started.
 * `listen` is the address to accept on (default 127.0.0.1; a test network's bridge address lets
 * its namespaces reach a service of this host that listens on 127.0.0.1 only).
 */
export async function startTcpProxy(
  target: () => { host: string; port: number },
  listen = '127.0.0.1',
): Promise<TcpProxy> {
  const open = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let accepted = 0;
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) return void client.resetAndDestroy();
    accepted++;
    const { host, port } = target();
    const upstream = net.connect(port, host);
    const pair = { client, upstream };
    open.add(pair);
    const drop = (): void => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, listen, resolve));
  const { port } = server.address() as net.AddressInfo;
  const proxy: TcpProxy = {
    address: `${listen}:${port}`,
    get accepted() {
      return accepted;
    },
    killAll() {
      const n = open.size;
      for (const { client, upstream } of [...open]) {
        // resetAndDestroy: an RST, not a polite FIN, like a path that died.
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      open.clear();
      return n;
    },
    block() {
      blocked = true;
      proxy.killAll();
    },
    unblock() {
      blocked = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const { client, upstream } of open) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
  return proxy;
}
