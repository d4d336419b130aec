import type { StoreHandle } from '../store/db.js';
import type { BatchRow } from '../store/batch-queries.js';
import { parseStatus, type StoredStatus } from '../store/batch-state.js';
import { indexSets, type AttemptRow, type ItemRow } from '../store/item-queries.js';
import { validationProblem } from './problems.js';

/** Store rows to the JSON the API answers with. */

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** Index sets of running batches are recomputed at most this often (big ones less often). */
const INDEX_REFRESH_MS = 1000;
const BIG_INDEX_REFRESH_MS = 5000;
const CHEAP_TOTAL = 100_000;

/**
 * completedIndexes/failedIndexes are one ordered scan each, so they are cached in the row's
 * status and recomputed when item counts moved: at once for a final batch, at most every second
 * (every few seconds for big batches) while it runs, so a client polling progress does not turn
 * every GET into a scan of the batch. The counts are always current.
 */
function freshIndexes(store: StoreHandle, row: BatchRow, status: StoredStatus): Pick<StoredStatus, 'completedIndexes' | 'failedIndexes'> {
  // Both counts: after a retry, succeeded+failed can be what it was before with other indexes.
  const key = `${row.succeeded},${row.failed},${row.cancelled}`;
  if (status.indexesKey === key) return status;
  const now = Date.now();
  const final = row.state === 'final';
  const refreshMs = row.total > CHEAP_TOTAL ? BIG_INDEX_REFRESH_MS : INDEX_REFRESH_MS;
  if (!final && status.indexesComputedAt && now - status.indexesComputedAt < refreshMs) return status;
  const sets = indexSets(store, row.id);
  const next = { ...status, ...sets, indexesKey: key, indexesComputedAt: now };
  // Only the cache fields change; a concurrent status write elsewhere wins over this one.
  store.sqlite
    .prepare("UPDATE batches SET status = json_set(status, '$.completedIndexes', ?, '$.failedIndexes', ?, '$.indexesKey', ?, '$.indexesComputedAt', ?) WHERE id = ?")
    .run(next.completedIndexes, next.failedIndexes, next.indexesKey, next.indexesComputedAt, row.id);
  return next;
}

export function batchView(store: StoreHandle, row: BatchRow) {
  const status = parseStatus(row);
  const sets = freshIndexes(store, row, status);
  return {
    id: row.id,
    name: row.name,
    labels: JSON.parse(row.labels) as Record<string, string>,
    createdAt: new Date(row.createdAt).toISOString(),
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
