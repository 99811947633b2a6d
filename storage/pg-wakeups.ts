/**
 * Tells followers of a log (`solstice logs -f`, the job page) that lines were stored, so they
 * read them now rather than at their next poll. LogStore.append raises a PostgreSQL
 * notification on LOG_CHANNEL with the job's id, delivered when its transaction commits; one
 * connection per process LISTENs for every follower in it, opened while any follows and closed
 * with the last.
 *
 * A wake-up only shortens a wait: followers still poll as before, so a lost notification (the
 * listening connection broke, or could not be opened) costs latency, never lines.
 */
import pg from 'pg';

export const LOG_CHANNEL = 'solstice_log';

export interface LogWaiter {
  /** Resolves after `ms`, or sooner when lines of the job are stored (or `signal` aborts). */
  wait(ms: number, signal?: AbortSignal): Promise<void>;
  release(): void;
}

interface Follower {
  /** Lines were stored since the follower last waited: its next wait returns at once. */
  pending: boolean;
  wake?: () => void;
}

export class LogWakeups {
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private followers = 0;
  private readonly byJob = new Map<string, Set<Follower>>();

  constructor(private readonly connect: () => pg.Client) {}

  /** A follower of `jobId`; release it when done so the listening connection can close. */
  follow(jobId: string): LogWaiter {
    const me: Follower = { pending: false };
    const set = this.byJob.get(jobId) ?? new Set<Follower>();
    this.byJob.set(jobId, set);
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
        if (set.size === 0 && this.byJob.get(jobId) === set) this.byJob.delete(jobId);
        this.followers -= 1;
        if (this.followers === 0) this.close();
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
    if (this.client || this.connecting) return;
    const client = this.connect();
    this.client = client;
    client.on('notification', (n) => {
      for (const f of this.byJob.get(n.payload ?? '') ?? []) {
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
      .then(() => client.query(`LISTEN ${LOG_CHANNEL}`))
      .then(
        () => undefined,
        () => {
          if (this.client === client) this.client = undefined;
          client.end().catch(() => undefined);
        },
      )
      .finally(() => {
        this.connecting = undefined;
        // Every follower left while it connected.
        if (this.followers === 0) this.close();
      });
  }

  private close(): void {
    if (this.connecting) return; // closed once connected, above
    const client = this.client;
    this.client = undefined;
    client?.end().catch(() => undefined);
  }
}
