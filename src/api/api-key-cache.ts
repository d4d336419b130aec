import { identifyApiKey } from '../store/api-keys.js';
import type { Store } from '../store/store.js';

/** How long a key found valid is believed without asking the store again. */
export const API_KEY_CACHE_MS = 1000;
/** Keys remembered at most; past that the oldest answer is dropped. */
const MAX_CACHED_KEYS = 10_000;

/** What the store says of a key: who it is, why it is refused, or null when it does not exist. */
type KeyAnswer = Exclude<ReturnType<typeof identifyApiKey> extends Generator<unknown, infer R, unknown> ? R : never, undefined>;

/**
 * A bearer key's identity (tenant, key id, scopes), remembered for {@link API_KEY_CACHE_MS} after
 * the store said it was valid: a client polling status would otherwise pay a hash and a store
 * read per request before its own. So a revoked or expired key, or a key of a disabled tenant,
 * keeps working for at most that long, on every replica (what "revoked within a second" means:
 * docs/api.md#tenants-api-keys-and-scopes). Only valid keys are remembered: a key that did not
 * exist or was refused is looked up again on its next use, so a new key works at once and unknown
 * keys cannot fill the cache.
 */
export class ApiKeyCache {
  private readonly found = new Map<string, { answer: KeyAnswer; until: number }>();

  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  async identify(key: string): Promise<KeyAnswer> {
    const now = this.now();
    const cached = this.found.get(key);
    if (cached && now < cached.until) return cached.answer;
    const answer = await this.store.read(identifyApiKey(key, now));
    // Re-inserted at the end, so the first key of the map is always the oldest answer.
    this.found.delete(key);
    if (answer && !('refused' in answer)) {
      this.found.set(key, { answer, until: now + API_KEY_CACHE_MS });
      if (this.found.size > MAX_CACHED_KEYS) this.found.delete(this.found.keys().next().value as string);
    }
    return answer;
  }

  /**
   * Forgets every answer: after a key is revoked or a tenant changed through this process, its
   * next request is checked against the store at once (other replicas within their second).
   */
  forgetAll(): void {
    this.found.clear();
  }

  /** The tenant of a valid key, or null (unknown or refused). */
  async tenantOf(key: string): Promise<string | null> {
    const answer = await this.identify(key);
    return answer && !('refused' in answer) ? answer.tenantId : null;
  }
}

const caches = new WeakMap<Store, ApiKeyCache>();

/** The one cache of a process's store, shared by authentication and the calls that change keys. */
export function apiKeyCacheOf(store: Store): ApiKeyCache {
  let cache = caches.get(store);
  if (!cache) caches.set(store, (cache = new ApiKeyCache(store)));
  return cache;
}
