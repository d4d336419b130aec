import { and, asc, eq, gt, inArray } from 'drizzle-orm';
import { IndexRangeBuilder } from '../domain/index-ranges.js';
import type { StoreHandle } from './db.js';
import { attempts, items } from './schema.js';

export type ItemRow = typeof items.$inferSelect;
export type AttemptRow = typeof attempts.$inferSelect;
export type ItemStatus = ItemRow['status'];

/** One page of items in index order, optionally of one status. */
export function listItems(
  store: StoreHandle,
  batchId: string,
  q: { status?: ItemStatus; limit: number; afterIndex?: number },
): { rows: ItemRow[]; more: boolean } {
  const where = [eq(items.batchId, batchId)];
  if (q.status) where.push(eq(items.status, q.status));
  if (q.afterIndex !== undefined) where.push(gt(items.idx, q.afterIndex));
  const rows = store.db.select().from(items).where(and(...where)).orderBy(asc(items.idx)).limit(q.limit + 1).all();
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
}

export function getItem(store: StoreHandle, batchId: string, index: number): ItemRow | undefined {
  return store.db.select().from(items).where(and(eq(items.batchId, batchId), eq(items.idx, index))).get();
}

export function listAttempts(store: StoreHandle, batchId: string, indexes: number[]): AttemptRow[] {
  if (indexes.length === 0) return [];
  return store.db
    .select()
    .from(attempts)
    .where(and(eq(attempts.batchId, batchId), inArray(attempts.idx, indexes)))
    .orderBy(asc(attempts.idx), asc(attempts.attempt))
    .all();
}

/**
 * Pages of result rows in index order. Pages, not one iterator: an open better-sqlite3 iterator
 * would keep the connection busy for as long as a slow client downloads.
 */
export function* resultPages(store: StoreHandle, batchId: string, pageSize = 2000): Generator<(ItemRow & { attemptCount: number })[]> {
  const page = store.sqlite.prepare(
    `SELECT i.idx, i.custom_id AS customId, i.status, i.result, i.result_blob AS resultBlob, i.error, i.reason,
            (SELECT count(*) FROM attempts a WHERE a.batch_id = i.batch_id AND a.idx = i.idx) AS attemptCount
       FROM items i WHERE i.batch_id = ? AND i.idx > ? ORDER BY i.idx LIMIT ?`,
  );
  let after = -1;
  for (;;) {
    const rows = page.all(batchId, after, pageSize) as (ItemRow & { attemptCount: number })[];
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1].idx;
    if (rows.length < pageSize) return;
  }
}

/** completedIndexes / failedIndexes in interval notation, from one ordered index scan each. */
export function indexSets(store: StoreHandle, batchId: string): { completedIndexes: string; failedIndexes: string } {
  const scan = store.sqlite.prepare('SELECT idx FROM items WHERE batch_id = ? AND status = ? ORDER BY idx').pluck();
  const build = (status: string) => {
    const b = new IndexRangeBuilder();
    for (const idx of scan.iterate(batchId, status) as Iterable<number>) b.add(idx);
    return b.toString();
  };
  return { completedIndexes: build('succeeded'), failedIndexes: build('failed') };
}
