import { getItem, listAttempts, type AttemptRow, type ItemRow } from '../../src/store/item-queries.js';
import type { Op } from '../../src/store/op.js';

/** The attempt history of the given items of a batch, as the API reads it (rows and item rows together). */
export function* attemptHistory(batchId: string, indexes: number[]): Op<AttemptRow[]> {
  const items: ItemRow[] = [];
  for (const index of indexes) {
    const item = yield* getItem(batchId, index);
    if (item) items.push(item);
  }
  return yield* listAttempts(batchId, items);
}
