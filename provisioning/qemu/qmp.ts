/**
 * A small client for the QEMU Machine Protocol (JSON objects, one per line, over the VM's
 * unix socket): greeting → qmp_capabilities → commands. Events (objects with "event") are
 * skipped. No maintained QMP client exists on npm, and we need three commands.
 */
import net from 'node:net';
import readline from 'node:readline';

interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
  event?: string;
  QMP?: unknown;
}

export class QmpClient {
  private readonly pending: ((r: QmpReply) => void)[] = [];
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    const lines = readline.createInterface({ input: socket });
    lines.on('line', (line) => {
      let msg: QmpReply;
      try {
        msg = JSON.parse(line) as QmpReply;
      } catch {
        return;
      }
      if (msg.event !== undefined) return;
      this.pending.shift()?.(msg);
    });
    socket.on('close', () => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p({ error: { class: 'Closed', desc: 'QMP socket closed' } });
    });
    socket.on('error', () => undefined);
  }

  /** Connects and negotiates capabilities; rejects within `timeoutMs`. */
  static async connect(socketPath: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = net.connect(socketPath);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`QMP ${socketPath}: no answer in time`)));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new QmpClient(socket);
    // The greeting arrives unasked; it takes the first reply slot.
    const greeting = await client.next();
    if (greeting.QMP === undefined) throw new Error(`QMP ${socketPath}: unexpected greeting`);
    await client.execute('qmp_capabilities');
    socket.setTimeout(0);
    return client;
  }

  private next(): Promise<QmpReply> {
    if (this.closed) return Promise.resolve({ error: { class: 'Closed', desc: 'QMP socket closed' } });
    return new Promise((resolve) => this.pending.push(resolve));
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this.next();
    this.socket.write(
      `${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`,
    );
    const r = await reply;
    if (r.error) throw new Error(`QMP ${command}: ${r.error.class}: ${r.error.desc}`);
    return r.return;
  }

  close(): void {
    this.socket.destroy();
  }
}
