import type { Redis } from 'ioredis';
import { HALT_PAUSE, HALT_STOP, haltKey, type HaltMode } from '../runtimes/queue/protocol.js';

/**
 * Whether a batch is halted, and how: a plain GET of its halt key, checked before each item
 * starts (and about once a second by `HaltWatch` while items run), cached briefly per batch
 * so a lease of many small items does not cost a round trip each.
 */
export class HaltCache {
  private readonly entries = new Map<string, { at: number; mode: Promise<HaltMode | null> }>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs = 200,
  ) {}

  /** The batch's halt mode as of at most `ttlMs` ago; null when it may run. */
  mode(batchId: string): Promise<HaltMode | null> {
    const now = Date.now();
    const cached = this.entries.get(batchId);
    if (cached && now - cached.at < this.ttlMs) return cached.mode;
    const mode = this.redis.get(haltKey(this.prefix, batchId)).then(parseHaltMode);
    // a failed read is not cached: the next caller asks again
    mode.catch(() => this.entries.delete(batchId));
    this.entries.set(batchId, { at: now, mode });
    if (this.entries.size > 1000) this.prune(now);
    return mode;
  }

  private prune(now: number): void {
    for (const [batchId, entry] of this.entries) {
      if (now - entry.at >= this.ttlMs) this.entries.delete(batchId);
    }
  }
}

/**
 * The mode a halt key's value asks for. Dispatchers before the stop/pause split wrote other
 * values (`1`) for every halt, mostly cancellations and failures: any value but `pause` is `stop`.
 */
export function parseHaltMode(value: string | null): HaltMode | null {
  if (value === null) return null;
  return value === HALT_PAUSE ? HALT_PAUSE : HALT_STOP;
}
