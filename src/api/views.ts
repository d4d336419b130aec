import type { BatchRow } from '../store/batch-queries.js';
import { parseStatus, type StoredStatus } from '../store/batch-state.js';
import type { AttemptRow, ItemRow } from '../store/item-queries.js';
import type { Store } from '../store/store.js';
import { indexSetCacheOf, type IndexSets } from './index-set-cache.js';
import { validationProblem } from './problems.js';

/** Store rows to the JSON the API answers with. */

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** A batch as the API answers it, with its index sets already looked up (see {@link loadBatchView}). */
export function batchView(row: BatchRow, sets: IndexSets, status: StoredStatus = parseStatus(row)) {
  return {
    id: row.id,
    name: row.name,
    labels: JSON.parse(row.labels) as Record<string, string>,
    createdAt: new Date(row.createdAt).toISOString(),
    priority: row.priority,
    spec: JSON.parse(row.spec),
    status: {
      phase: row.phase,
      counts: { total: row.total, pending: row.pending, running: row.running, succeeded: row.succeeded, failed: row.failed, cancelled: row.cancelled },
      completedIndexes: sets.completedIndexes,
      failedIndexes: sets.failedIndexes,
      conditions: status.conditions,
      startTime: status.startTime,
      completionTime: status.completionTime,
    },
  };
}

export type BatchView = ReturnType<typeof batchView>;

/** A batch's view, its index sets from the API's cache (src/api/index-set-cache.ts); only reads. */
export async function loadBatchView(store: Store, row: BatchRow): Promise<BatchView> {
  // The status JSON parsed once for both (a list parses it for every batch of the page).
  const status = parseStatus(row);
  return batchView(row, await indexSetCacheOf(store).setsOf(store, row, Date.now(), status), status);
}

/** Views of a page of batches, one after the other (one store connection at a time). */
export async function loadBatchViews(store: Store, rows: readonly BatchRow[]): Promise<BatchView[]> {
  const views: BatchView[] = [];
  for (const row of rows) views.push(await loadBatchView(store, row));
  return views;
}

export function attemptView(a: AttemptRow) {
  return {
    attempt: a.attempt,
    outcome: a.outcome,
    exitCode: a.exitCode,
    httpStatus: a.httpStatus,
    condition: a.condition,
    error: a.error,
    decision: a.decision,
    worker: a.worker,
    startedAt: iso(a.startedAt),
    finishedAt: iso(a.finishedAt)!,
  };
}

/** An item; results kept in the blob directory are not inlined here (see GET …/results). */
export function itemView(row: ItemRow, attempts: AttemptRow[]) {
  return {
    index: row.idx,
    customId: row.customId,
    status: row.status,
    ...(row.resultBlob ? { resultTruncated: true } : row.result !== null ? { result: JSON.parse(row.result) } : {}),
    error: row.error,
    reason: row.reason,
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    attempts: attempts.map(attemptView),
  };
}

/**
 * An item with its input, as JSON text: the stored input is valid JSON text and is spliced in as
 * it is, never parsed and serialized again, so no input (even one stored before nesting depth was
 * limited, deep enough to overflow JSON.stringify) can make this answer fail.
 */
export function itemWithInputJson(row: ItemRow, attempts: AttemptRow[]): string {
  const view = JSON.stringify(itemView(row, attempts));
  return `${view.slice(0, -1)},"input":${row.input}}`;
}

/** Opaque cursors: base64url of the last key of the previous page. */
export const encodeCursor = (key: string | number) => Buffer.from(String(key)).toString('base64url');
/** A cursor whose key does not match `shape` was not made by us: 422 rather than a silently wrong page. */
export function decodeCursor(cursor: string | undefined, shape: RegExp): string | undefined {
  if (!cursor) return undefined;
  const key = Buffer.from(cursor, 'base64url').toString();
  // Only what encodeCursor writes: base64url decoding skips stray characters, so "YjE!" would pass.
  if (!shape.test(key) || encodeCursor(key) !== cursor) throw validationProblem([{ pointer: '/query/cursor', detail: 'not a cursor this API returned: pass nextCursor from the previous page unchanged' }]);
  return key;
}
