/**
 * A TLS-terminating TCP proxy in front of a plaintext server (the run's Temporal dev server):
 * what a TLS-serving Temporal frontend looks like to a client, with mTLS when given a client CA.
 * It speaks HTTP/2's ALPN id so gRPC clients (grpc-js and the Rust core) accept it.
 */
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';

export interface TlsProxy {
  address: string;
  /** Client certificates presented and refused, in order (for asserting mTLS is enforced). */
  refused: string[];
  close(): Promise<void>;
}

export async function startTlsProxy(opts: {
  target: string;
  cert: string;
  key: string;
  /** Require a client certificate signed by this CA. */
  clientCa?: string;
}): Promise<TlsProxy> {
  const [host, port] = [
    opts.target.slice(0, opts.target.lastIndexOf(':')),
    Number(opts.target.slice(opts.target.lastIndexOf(':') + 1)),
  ];
  const sockets = new Set<net.Socket>();
  const refused: string[] = [];
  const server = tls.createServer(
    {
      cert: fs.readFileSync(opts.cert),
      key: fs.readFileSync(opts.key),
      ALPNProtocols: ['h2'],
      ...(opts.clientCa
        ? { ca: fs.readFileSync(opts.clientCa), requestCert: true, rejectUnauthorized: true }
        : {}),
    },
    (client) => {
      const upstream = net.connect(port, host);
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    },
  );
  server.on('tlsClientError', (err) => refused.push(err.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: own } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${own}`,
    refused,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
