import { IndexRangeBuilder, formatIndexRanges } from '../domain/index-ranges.js';
import { all, get, pluck, type Op } from './op.js';
import { ATTEMPT_COLUMNS, ITEM_COLUMNS, placeholders, type AttemptRow, type ItemRow } from './columns.js';

export type { AttemptRow, ItemRow, ItemStatus } from './columns.js';

/** One page of items in index order, optionally of one status. */
export function* listItems(batchId: string, q: { status?: ItemRow['status']; limit: number; afterIndex?: number }): Op<{ rows: ItemRow[]; more: boolean }> {
  let where = 'batch_id = ?';
  const params: unknown[] = [batchId];
  if (q.status) {
    where += ' AND status = ?';
    params.push(q.status);
  }
  if (q.afterIndex !== undefined) {
    where += ' AND idx > ?';
    params.push(q.afterIndex);
  }
  const rows = yield* all<ItemRow>(`SELECT ${ITEM_COLUMNS} FROM items WHERE ${where} ORDER BY idx LIMIT ?`, ...params, q.limit + 1);
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
}

export function getItem(batchId: string, index: number): Op<ItemRow | undefined> {
  return get<ItemRow>(`SELECT ${ITEM_COLUMNS} FROM items WHERE batch_id = ? AND idx = ?`, batchId, index);
}

/**
 * The attempts of the given items (rows just read in the same operation), in order. A succeeded
 * attempt is usually kept in its item's row rather than as an `attempts` row (src/store/reports.ts):
 * it is added from there, unless a row for it exists (one recorded before that change, or a
 * success with a condition or an error).
 */
export function* listAttempts(batchId: string, items: readonly ItemRow[]): Op<AttemptRow[]> {
  if (items.length === 0) return [];
  const rows = yield* all<AttemptRow>(
    `SELECT ${ATTEMPT_COLUMNS} FROM attempts WHERE batch_id = ? AND idx IN (${placeholders(items.length)}) ORDER BY idx, attempt`,
    batchId,
    ...items.map((item) => item.idx),
  );
  return withSucceededAttempts(items, rows);
}

/** `rows` (in index and attempt order) with the succeeded attempt of each item no row holds, in order. */
function withSucceededAttempts(items: readonly ItemRow[], rows: AttemptRow[]): AttemptRow[] {
  const held = new Set(rows.map((r) => `${r.idx}.${r.attempt}`));
  const added: AttemptRow[] = [];
  for (const item of items) {
    if (item.status !== 'succeeded' || held.has(`${item.idx}.${item.attempt}`)) continue;
    added.push({
      batchId: item.batchId,
      idx: item.idx,
      attempt: item.attempt,
      outcome: 'succeeded',
      exitCode: item.exitCode,
      httpStatus: item.httpStatus,
      condition: null,
      error: null,
      decision: null,
      worker: item.worker,
      startedAt: item.attemptStartedAt,
      finishedAt: item.attemptFinishedAt ?? item.finishedAt ?? 0,
    });
  }
  if (added.length === 0) return rows;
  return [...rows, ...added].sort((a, b) => a.idx - b.idx || a.attempt - b.attempt);
}

export type ResultRow = Pick<ItemRow, 'idx' | 'customId' | 'status' | 'result' | 'resultBlob' | 'error' | 'reason'> & { attemptCount: number };

/**
 * One page of result rows in index order, after index `after`. Read page by page, each in its
 * own read: an open cursor would hold a connection for as long as a slow client downloads.
 */
export function resultPage(batchId: string, after: number, pageSize: number): Op<ResultRow[]> {
  return all<ResultRow>(
    `SELECT i.idx, i.custom_id AS "customId", i.status, i.result, i.result_blob AS "resultBlob", i.error, i.reason,
            -- its attempts rows, its succeeded attempt counted once whether it has a row or not (listAttempts)
            (SELECT count(*) FROM attempts a WHERE a.batch_id = i.batch_id AND a.idx = i.idx AND NOT (i.status = 'succeeded' AND a.attempt = i.attempt))
              + CASE WHEN i.status = 'succeeded' THEN 1 ELSE 0 END AS "attemptCount"
       FROM items i WHERE i.batch_id = ? AND i.idx > ? ORDER BY i.idx LIMIT ?`,
    batchId,
    after,
    pageSize,
  );
}

/**
 * completedIndexes / failedIndexes in interval notation, from one ordered index scan each.
 * Given the batch's counts, a set with no item is not scanned for (the scan for succeeded items
 * reads every item of the batch: seconds for millions, as when a batch nothing ran is cancelled),
 * nor one with every item: a batch's indexes are 0 to total - 1, so that set is the whole range
 * (the scan took 120-170 ms at the end of each 200,000-item run of bench B on PostgreSQL).
 */
export function* indexSets(batchId: string, counts?: { total: number; succeeded: number; failed: number }): Op<{ completedIndexes: string; failedIndexes: string }> {
  const build = function* (status: 'succeeded' | 'failed'): Op<string> {
    if (counts && counts[status] === 0) return '';
    if (counts && counts[status] === counts.total) return formatIndexRanges([{ first: 0, last: counts.total - 1 }]);
    const b = new IndexRangeBuilder();
    for (const idx of yield* pluck<number>('SELECT idx FROM items WHERE batch_id = ? AND status = ? ORDER BY idx', batchId, status)) b.add(idx);
    return b.toString();
  };
  return { completedIndexes: yield* build('succeeded'), failedIndexes: yield* build('failed') };
}
