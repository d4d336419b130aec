/**
 * A counting semaphore, FIFO: the process-wide limit on items executing at once. Items of one
 * lease run concurrently, but the total across every lease this process holds never exceeds
 * the size.
 */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
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
  async acquire(): Promise<() => void> {
    if (this.active < this.size) {
      this.active++;
    } else {
      // the releasing holder hands its permit straight over, so `active` stays the same
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.peak = Math.max(this.peak, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.active--;
    };
  }

  /** Runs `fn` while holding a permit. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
