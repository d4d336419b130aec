import type { Redis } from 'ioredis';
import { haltKey } from '../runtimes/queue/protocol.js';

/**
 * Whether a batch is halted (cancelled, suspended, final): a plain GET of its halt key, checked
 * before each item starts and cached briefly per batch so a lease of many small items does not
 * cost a round trip each.
 */
export class HaltCache {
  private readonly entries = new Map<string, { at: number; halted: Promise<boolean> }>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs = 200,
  ) {}

  /** True when the batch's halt key is set (as of at most `ttlMs` ago). */
  isHalted(batchId: string): Promise<boolean> {
    const now = Date.now();
    const cached = this.entries.get(batchId);
    if (cached && now - cached.at < this.ttlMs) return cached.halted;
    const halted = this.redis.get(haltKey(this.prefix, batchId)).then((value) => value !== null);
    // a failed read is not cached: the next item asks again
    halted.catch(() => this.entries.delete(batchId));
    this.entries.set(batchId, { at: now, halted });
    if (this.entries.size > 1000) this.prune(now);
    return halted;
  }

  private prune(now: number): void {
    for (const [batchId, entry] of this.entries) {
      if (now - entry.at >= this.ttlMs) this.entries.delete(batchId);
    }
  }
}
