/**
 * A RabbitMQ virtual host of its own for a test file, on the machine's broker
 * (127.0.0.1:5672, guest/guest), so the topology names (TOPOLOGY here) never collide
 * between test files or with a running `solstice up`. Made with `rabbitmqctl` (the
 * management HTTP API is not enabled on these machines); deleted afterwards.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { declareTopology, topologyFor } from '../../ingress/amqp';

/**
 * The names tests give their connections (SOLSTICE_AMQP_PREFIX for processes they spawn);
 * services find their own from the installation id when no prefix is given.
 */
export const TOPOLOGY = topologyFor('solstice.test');

const run = promisify(execFile);
const BROKER = process.env.SOLSTICE_TEST_AMQP_BROKER ?? 'guest:guest@127.0.0.1:5672';

export interface TestVhost {
  name: string;
  url: string;
  /** Messages waiting in a queue of this vhost. */
  depth(queue: string): Promise<number>;
  /** Takes every message from a queue (acked). */
  drain(queue: string): Promise<amqp.GetMessage[]>;
  drop(): Promise<void>;
}

async function ctl(...args: string[]): Promise<void> {
  try {
    await run('rabbitmqctl', ['-q', ...args], { timeout: 60_000 });
  } catch (err) {
    throw new Error(
      `rabbitmqctl ${args.join(' ')} failed (tests need RabbitMQ on 127.0.0.1:5672 and rabbitmqctl as root): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

export async function createTestVhost(prefix = 'solstice_test'): Promise<TestVhost> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await ctl('add_vhost', name);
  await ctl('set_permissions', '-p', name, 'guest', '.*', '.*', '.*');
  const url = `amqp://${BROKER}/${encodeURIComponent(name)}`;
  const withChannel = async <T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> => {
    const conn = await amqp.connect(url);
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined); // the failed operation rejects with the same error
      return await fn(ch);
    } finally {
      await conn.close();
    }
  };
  // Declared up front so a test may inspect the queues before any service connected.
  await withChannel((ch) => declareTopology(ch, TOPOLOGY));
  return {
    name,
    url,
    depth: (queue) => withChannel(async (ch) => (await ch.checkQueue(queue)).messageCount),
    drain: (queue) =>
      withChannel(async (ch) => {
        const out: amqp.GetMessage[] = [];
        for (let m = await ch.get(queue); m; m = await ch.get(queue)) {
          out.push(m);
          ch.ack(m);
        }
        return out;
      }),
    drop: () => ctl('delete_vhost', name),
  };
}
