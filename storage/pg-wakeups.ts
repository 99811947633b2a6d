/**
 * Wake-ups through PostgreSQL notifications, so a waiter in this process acts when something it
 * waits for is committed rather than at its next poll: followers of a log (`solstice logs -f`,
 * the job page) when lines are stored, a pool machine's held WaitForAssignment when its job is
 * sealed to it, a claiming job when its machine took the job. The writer raises a notification
 * on the channel with the key (a job's or machine's id) after its transaction commits; one
 * connection per channel and process LISTENs for every waiter in it, opened while any waits
 * (and for `lingerMs` after the last, for waiters that come and go all the time).
 *
 * A wake-up only shortens a wait: waiters still poll as before, so a lost notification (the
 * listening connection broke, could not be opened, or was not listening yet) costs latency,
 * never data.
 */
import pg from 'pg';

/** The channels, each with what its keys are. */
export const WAKE_CHANNEL = {
  /** A job's id: lines of the job were stored (storage/log-store.ts). */
  log: 'solstice_log',
  /** A pool machine's id: a job was sealed to it (capacity/pool-store.ts). */
  poolClaim: 'solstice_pool_claim',
  /** A job's id: the pool machine claimed for it took the job. */
  poolDelivery: 'solstice_pool_delivery',
} as const;

export type WakeChannel = (typeof WAKE_CHANNEL)[keyof typeof WAKE_CHANNEL];

/** Raises `channel`'s notification for each key, on `pool` (outside any transaction: see LogStore.notifyStored). */
export async function notifyWaiters(pool: pg.Pool, channel: WakeChannel, keys: string[]): Promise<void> {
  await pool.query(`SELECT pg_notify('${channel}', k) FROM unnest($1::text[]) AS k`, [keys]);
}

export interface Waiter {
  /** Resolves after `ms`, or sooner when the key is notified (or `signal` aborts). */
  wait(ms: number, signal?: AbortSignal): Promise<void>;
  release(): void;
}

interface Follower {
  /** The key was notified since the follower last waited: its next wait returns at once. */
  pending: boolean;
  wake?: () => void;
}

export class PgWakeups {
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private followers = 0;
  private lingering: ReturnType<typeof setTimeout> | undefined;
  /** stop() came while the connection was opening: close it once open, linger or not. */
  private stopped = false;
  private readonly byKey = new Map<string, Set<Follower>>();

  constructor(
    private readonly connect: () => pg.Client,
    private readonly channel: WakeChannel,
    /** How long the listening connection stays open after its last waiter left. */
    private readonly lingerMs = 0,
  ) {}

  /** A waiter for `key`; release it when done so the listening connection can close. */
  follow(key: string): Waiter {
    const me: Follower = { pending: false };
    const set = this.byKey.get(key) ?? new Set<Follower>();
    this.byKey.set(key, set);
    set.add(me);
    this.followers += 1;
    this.listen();
    let released = false;
    return {
      wait: (ms, signal) => this.wait(me, ms, signal),
      release: () => {
        if (released) return;
        released = true;
        me.wake?.();
        set.delete(me);
        if (set.size === 0 && this.byKey.get(key) === set) this.byKey.delete(key);
        this.followers -= 1;
        if (this.followers === 0) this.closeSoon();
      },
    };
  }

  private wait(me: Follower, ms: number, signal?: AbortSignal): Promise<void> {
    if (me.pending || signal?.aborted) {
      me.pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        me.wake = undefined;
        me.pending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      me.wake = done;
    });
  }

  private listen(): void {
    this.stopped = false;
    if (this.lingering) clearTimeout(this.lingering);
    this.lingering = undefined;
    if (this.client || this.connecting) return;
    const client = this.connect();
    this.client = client;
    client.on('notification', (n) => {
      for (const f of this.byKey.get(n.payload ?? '') ?? []) {
        f.pending = true;
        f.wake?.();
      }
    });
    // A broken listening connection leaves followers to their polls; the next follower retries.
    client.on('error', () => {
      if (this.client === client) this.client = undefined;
      client.end().catch(() => undefined);
    });
    this.connecting = client
      .connect()
      .then(() => client.query(`LISTEN ${this.channel}`))
      .then(
        () => undefined,
        () => {
          if (this.client === client) this.client = undefined;
          client.end().catch(() => undefined);
        },
      )
      .finally(() => {
        this.connecting = undefined;
        // Every follower left while it connected, or the process is shutting down.
        if (this.stopped) this.close();
        else if (this.followers === 0) this.closeSoon();
      });
  }

  private closeSoon(): void {
    if (this.lingerMs <= 0) return this.close();
    if (this.lingering) clearTimeout(this.lingering);
    this.lingering = setTimeout(() => {
      this.lingering = undefined;
      if (this.followers === 0) this.close();
    }, this.lingerMs);
    // A lingering connection must not keep a process alive that is otherwise done.
    this.lingering.unref();
  }

  /** Closes the listening connection now (a process shutting down): waiters fall back to polling. */
  stop(): void {
    this.stopped = true;
    if (this.lingering) clearTimeout(this.lingering);
    this.lingering = undefined;
    this.close();
  }

  private close(): void {
    if (this.connecting) return; // closed once connected, above
    const client = this.client;
    this.client = undefined;
    client?.end().catch(() => undefined);
  }
}
