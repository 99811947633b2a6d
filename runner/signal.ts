/**
 * A level-free wake-up: waiters are resolved by the next notify(). Lets the log shipper sleep
 * until "something changed" (a line was appended, an ack arrived, the stream broke) without
 * polling.
 */
export class ChangeSignal {
  private waiters = new Set<() => void>();

  notify(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Resolves true on the next notify(), or false after timeoutMs (if given). */
  wait(timeoutMs?: number): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = (): void => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
      this.waiters.add(wake);
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () => {
            this.waiters.delete(wake);
            resolve(false);
          },
          Math.max(0, timeoutMs),
        );
      }
    });
  }
}
