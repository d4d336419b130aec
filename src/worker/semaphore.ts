/**
 * A counting semaphore: the process-wide limit on items executing at once. Items of one lease
 * run concurrently, but the total across every lease this process holds never exceeds the size.
 *
 * Waiters are served fairly between keys (a batch id): round-robin over the keys that wait, FIFO
 * within a key. A worker holds several leases at once (BullMQ fetches one per free slot), so a
 * batch whose leases arrived first would otherwise have every one of its items served before the
 * first item of a batch whose leases came a moment later.
 */
export class Semaphore {
  private active = 0;
  /** waiters by key, in the order keys take their turn (a served key moves to the end) */
  private readonly waiting = new Map<string, Array<() => void>>();
  /** highest number of permits ever held at once */
  peak = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`semaphore size must be a positive integer, got ${size}`);
  }

  /** Number of permits held now. */
  get inUse(): number {
    return this.active;
  }

  /** Waits for a permit; the returned function gives it back (calling it twice is harmless). */
  async acquire(key = ''): Promise<() => void> {
    if (this.active < this.size) {
      this.active++;
    } else {
      // the releasing holder hands its permit straight over, so `active` stays the same
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(key);
        if (queue) queue.push(resolve);
        else this.waiting.set(key, [resolve]);
      });
    }
    this.peak = Math.max(this.peak, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.takeNext();
      if (next) next();
      else this.active--;
    };
  }

  /** The next waiter: the first of the key whose turn it is; that key then goes to the back. */
  private takeNext(): (() => void) | undefined {
    const first = this.waiting.entries().next();
    if (first.done) return undefined;
    const [key, queue] = first.value;
    const next = queue.shift();
    this.waiting.delete(key);
    if (queue.length > 0) this.waiting.set(key, queue);
    return next;
  }

  /** Runs `fn` while holding a permit. */
  async run<T>(fn: () => Promise<T>, key?: string): Promise<T> {
    const release = await this.acquire(key);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
