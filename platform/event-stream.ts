/**
 * A server-sent event stream on a Fastify reply, as the job page and the API's log follow send
 * them: the reply is taken over from Fastify, proxies are told not to buffer it, and each write
 * waits for the socket to drain, so a slow reader holds the sender back instead of the heap.
 */
import type { FastifyReply } from 'fastify';

export interface EventStream {
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** Sends one event (`id:` first when given); resolves once the socket takes more. */
  send(event: string, data: string, id?: number): Promise<void>;
  /** True once the reply has ended. */
  ended(): boolean;
  end(): void;
}

export function openEventStream(reply: FastifyReply): EventStream {
  const stop = new AbortController();
  reply.raw.on('close', () => stop.abort());
  reply.hijack();
  reply.raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  const write = (chunk: string): Promise<void> =>
    new Promise((resolve) => (reply.raw.write(chunk) ? resolve() : reply.raw.once('drain', resolve)));
  return {
    signal: stop.signal,
    send: (event, data, id) =>
      write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${data}\n\n`),
    ended: () => reply.raw.writableEnded,
    end: () => reply.raw.end(),
  };
}
