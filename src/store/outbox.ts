import { all, run, type Op } from './op.js';
import { placeholders } from './columns.js';

/**
 * Takes the dispatch intents written by API operations: returns the batch ids to reconcile
 * and deletes the rows. Deleting before reconciling is safe: the periodic resync reconciles
 * every active batch anyway, the outbox only makes it prompt.
 * How the dispatcher is woken: docs/architecture.md#data-flow-of-a-batch.
 */
export function* takeOutbox(limit = 1000): Op<string[]> {
  const rows = yield* all<{ id: number; batchId: string }>('SELECT id, batch_id AS "batchId" FROM outbox ORDER BY id LIMIT ?', limit);
  if (rows.length === 0) return [];
  yield* run(`DELETE FROM outbox WHERE id IN (${placeholders(rows.length)})`, ...rows.map((r) => r.id));
  return [...new Set(rows.map((r) => r.batchId))];
}
