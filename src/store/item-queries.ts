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
 * The attempts of the given items, in order. A succeeded attempt is usually kept in its item's
 * row rather than as an `attempts` row (src/store/reports.ts): it is added from there, unless a
 * row for it exists (one recorded before that change, or a success with a condition or an error).
 */
export function* listAttempts(batchId: string, indexes: number[]): Op<AttemptRow[]> {
  if (indexes.length === 0) return [];
  const marks = placeholders(indexes.length);
  return yield* all<AttemptRow>(
    `SELECT ${ATTEMPT_COLUMNS} FROM attempts WHERE batch_id = ? AND idx IN (${marks})
     UNION ALL
     SELECT ${SUCCEEDED_ATTEMPT_COLUMNS} FROM items i
      WHERE i.batch_id = ? AND i.idx IN (${marks}) AND i.status = 'succeeded'
        AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.batch_id = i.batch_id AND a.idx = i.idx AND a.attempt = i.attempt)
     ORDER BY idx, attempt`,
    batchId,
    ...indexes,
    batchId,
    ...indexes,
  );
}

/** A succeeded item's attempt, read from its row: the columns of ATTEMPT_COLUMNS, in its order. */
const SUCCEEDED_ATTEMPT_COLUMNS = `i.batch_id AS "batchId", i.idx, i.attempt, 'succeeded' AS outcome, i.exit_code AS "exitCode", i.http_status AS "httpStatus",
  NULL AS condition, NULL AS error, NULL AS decision, i.worker, i.attempt_started_at AS "startedAt", coalesce(i.attempt_finished_at, i.finished_at) AS "finishedAt"`;

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
