import { authenticateApiKey } from '../store/tenants.js';
import type { Store } from '../store/store.js';

/** How long a key found valid is believed without asking the store again. */
export const API_KEY_CACHE_MS = 1000;
/** Keys remembered at most; past that the oldest answer is dropped. */
const MAX_CACHED_KEYS = 10_000;

/**
 * The tenant of a bearer key, remembered for {@link API_KEY_CACHE_MS} after the store said so:
 * a client polling status would otherwise pay a hash and a store read per request before its
 * own. So a deleted key keeps working for at most that long. Only keys found valid are
 * remembered: a key that did not exist is looked up again on its next use, so a new key works at
 * once and unknown keys cannot fill the cache.
 */
export class ApiKeyCache {
  private readonly found = new Map<string, { tenantId: string; until: number }>();

  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  async tenantOf(key: string): Promise<string | null> {
    const now = this.now();
    const cached = this.found.get(key);
    if (cached && now < cached.until) return cached.tenantId;
    const tenantId = await this.store.read(authenticateApiKey(key));
    // Re-inserted at the end, so the first key of the map is always the oldest answer.
    this.found.delete(key);
    if (tenantId) {
      this.found.set(key, { tenantId, until: now + API_KEY_CACHE_MS });
      if (this.found.size > MAX_CACHED_KEYS) this.found.delete(this.found.keys().next().value as string);
    }
    return tenantId;
  }
}
