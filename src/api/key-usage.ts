import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import { touchApiKeys } from '../store/api-keys.js';

/**
 * When each API key was last used, kept in memory and written every `flushMs` (and at close),
 * in one small write transaction per flush: a GET never writes, and a busy key costs one UPDATE
 * per flush interval per API process, not one per request. `lastUsedAt` is therefore up to one
 * interval late (FANOUT_KEY_LAST_USED_FLUSH_SECONDS, 60 by default).
 */
export class KeyUsage {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: { store: Store; flushMs: number; logger: Logger }) {}

  touch(keyId: string, at = Date.now()): void {
    this.pending.set(keyId, at);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.o.flushMs);
    this.timer.unref();
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.o.store.write(touchApiKeys(batch));
    } catch (err) {
      // Not worth a failed request: kept for the next flush unless newer uses replaced them.
      for (const [id, at] of batch) if (!this.pending.has(id)) this.pending.set(id, at);
      this.o.logger.warn({ err: (err as Error).message }, 'could not record when API keys were last used; will try again');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
