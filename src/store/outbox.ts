import { inArray } from 'drizzle-orm';
import type { StoreHandle } from './db.js';
import { outbox } from './schema.js';

/**
 * Takes the dispatch intents written by API transactions: returns the batch ids to reconcile
 * and deletes the rows. Deleting before reconciling is safe: the periodic resync reconciles
 * every active batch anyway, the outbox only makes it prompt.
 * How the dispatcher is woken: docs/architecture.md#data-flow-of-a-batch.
 */
export function takeOutbox(store: StoreHandle, limit = 1000): string[] {
  return store.sqlite.transaction(() => {
    const rows = store.db.select().from(outbox).limit(limit).all();
    if (rows.length === 0) return [];
    store.db.delete(outbox).where(inArray(outbox.id, rows.map((r) => r.id))).run();
    return [...new Set(rows.map((r) => r.batchId))];
  })();
}
