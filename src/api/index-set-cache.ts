import type { BatchRow } from '../store/batch-queries.js';
import { parseStatus, type StoredStatus } from '../store/batch-state.js';
import { indexSets } from '../store/item-queries.js';
import type { Store } from '../store/store.js';

/**
 * completedIndexes/failedIndexes are one ordered scan of a batch's items each, so the API keeps
 * them in memory and recomputes them only when the item counts moved: at once for a final batch,
 * at most every second (every few seconds for big batches) while it runs, so a client polling
 * progress does not turn every GET into a scan of the batch. The counts are always current.
 *
 * A GET never writes, so the sets are not stored from here: the dispatcher stores them in the
 * row's status when a batch becomes final, and those are used whenever they match the row's counts.
 */

export interface IndexSets {
  completedIndexes: string;
  failedIndexes: string;
}

interface Entry {
  /** `succeeded,failed,cancelled` counts the sets were computed for */
  key: string;
  computedAt: number;
  sets: IndexSets;
}

/** Index sets of running batches are recomputed at most this often (big ones less often). */
const INDEX_REFRESH_MS = 1000;
const BIG_INDEX_REFRESH_MS = 5000;
const CHEAP_TOTAL = 100_000;
/** Batches remembered per store; past that the least recently computed one is dropped. */
export const MAX_CACHED_BATCHES = 10_000;

/** The counts the index sets depend on. Both: after a retry, succeeded+failed can be what it was with other indexes. */
export const countsKey = (row: BatchRow): string => `${row.succeeded},${row.failed},${row.cancelled}`;

export class IndexSetCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries = MAX_CACHED_BATCHES) {}

  get size(): number {
    return this.entries.size;
  }

  /** The batch's index sets, fresh as described above; reads the store only when they are due. */
  async setsOf(store: Store, row: BatchRow, now = Date.now(), status: StoredStatus = parseStatus(row)): Promise<IndexSets> {
    // Nothing finished yet (a batch just created): both sets are empty, no scan needed. The
    // counters move in the transactions that move the items they count.
    if (row.succeeded === 0 && row.failed === 0) return { completedIndexes: '', failedIndexes: '' };
    const key = countsKey(row);
    if (status.indexesKey === key) return pick(status);
    const cached = this.entries.get(row.id);
    if (cached?.key === key) return cached.sets;
    // A batch whose items are still being cancelled or put back in chunks is final only in name.
    if (row.state !== 'final' || row.sweep !== null) {
      const refreshMs = row.total > CHEAP_TOTAL ? BIG_INDEX_REFRESH_MS : INDEX_REFRESH_MS;
      if (cached && now - cached.computedAt < refreshMs) return cached.sets;
      // Sets an older server stored while the batch ran count as a computation too.
      if (!cached && status.indexesComputedAt && now - status.indexesComputedAt < refreshMs) return pick(status);
    }
    const sets = await store.read(indexSets(row.id, row));
    this.remember(row.id, { key, computedAt: now, sets });
    return sets;
  }

  /** A deleted batch's sets are of no more use. */
  forget(batchId: string): void {
    this.entries.delete(batchId);
  }

  private remember(batchId: string, entry: Entry): void {
    // Re-inserted at the end, so the first key of the map is always the oldest computation.
    this.entries.delete(batchId);
    this.entries.set(batchId, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

const pick = (s: IndexSets): IndexSets => ({ completedIndexes: s.completedIndexes, failedIndexes: s.failedIndexes });

const caches = new WeakMap<Store, IndexSetCache>();

/** The cache of one store's batches (one per store, so apps over different stores never share sets). */
export function indexSetCacheOf(store: Store): IndexSetCache {
  let cache = caches.get(store);
  if (!cache) {
    cache = new IndexSetCache();
    caches.set(store, cache);
  }
  return cache;
}
