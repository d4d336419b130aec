/**
 * Paces object creation against the API server: at most `qps` creations a second (a token
 * bucket with a one-second burst), and after a 429 none until the server's Retry-After has
 * passed, or an exponential backoff when it names none. Pure timing; the caller sleeps.
 */
export class CreateLimiter {
  private tokens: number;
  private refilledAt: number;
  private pausedUntil = 0;
  private throttled = 0;

  constructor(
    private readonly qps: number,
    now = Date.now(),
  ) {
    this.tokens = qps;
    this.refilledAt = now;
  }

  /** Takes a token: 0 when the creation may go now, otherwise ms to wait before asking again. */
  take(now = Date.now()): number {
    if (now < this.pausedUntil) return this.pausedUntil - now;
    this.tokens = Math.min(this.qps, this.tokens + ((now - this.refilledAt) / 1000) * this.qps);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    // (less a hair: 0.996 tokens must not round up to a 2 ms wait)
    return Math.ceil(((1 - this.tokens) / this.qps) * 1000 - 1e-6);
  }

  /** The server answered 429: pause for its Retry-After (seconds), or back off 1 s, 2 s, 4 s… up to 60 s. */
  throttle(retryAfter: string | undefined, now = Date.now()): number {
    this.throttled++;
    const seconds = retryAfter !== undefined && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) : undefined;
    const waitMs = seconds !== undefined ? seconds * 1000 : Math.min(60_000, 1000 * 2 ** (this.throttled - 1));
    this.pausedUntil = Math.max(this.pausedUntil, now + waitMs);
    // No burst when the pause ends: the bucket fills from then on.
    this.tokens = 0;
    this.refilledAt = this.pausedUntil;
    return waitMs;
  }

  /** A creation went through: the next 429 starts the backoff from 1 s again. */
  succeeded(): void {
    this.throttled = 0;
  }
}
