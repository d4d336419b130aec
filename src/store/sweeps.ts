import { all, get, pluck, run, type Op } from './op.js';
import { bumpCounters, refreshStatus, settleFinal } from './batch-state.js';

/**
 * Work on every item of a batch (cancel its open items, put its failed ones back for a retry,
 * delete its rows) done in bounded chunks, each its own short transaction, instead of in one
 * statement over millions of rows: SQLite runs in the service's own thread, so one huge
 * statement stalls every request for seconds; on PostgreSQL one huge transaction holds the
 * batch's locks and bloats. The request that asks for the work records it on the batch row
 * (`sweep`, `sweep_cursor`) and does the first chunk; the dispatcher's sweeper
 * (src/dispatch/sweeper.ts) does the rest, yielding to the event loop between chunks, and a
 * restarted dispatcher resumes from the stored cursor. Counters move with the items of each
 * chunk, so every committed state is consistent.
 */

export type SweepKind = 'cancel' | 'retry' | 'delete';

/** Items per chunk unless configured (FANOUT_SWEEP_CHUNK_ITEMS). */
export const DEFAULT_SWEEP_CHUNK_ITEMS = 2000;

interface SweepRow {
  sweep: SweepKind | null;
  cursor: number;
  total: number;
}

const SWEEP_ROW = 'SELECT sweep, sweep_cursor AS "cursor", total FROM batches WHERE id = ?';

/**
 * Records chunked work on a batch and does its first chunk in the calling operation (a batch no
 * larger than a chunk is done at once). A new sweep replaces one still under way (a cancel
 * during a retry's, a delete during any), from the first item again.
 */
export function* startSweep(batchId: string, kind: SweepKind, now: number, chunkItems = DEFAULT_SWEEP_CHUNK_ITEMS): Op<void> {
  yield* run('UPDATE batches SET sweep = ?, sweep_cursor = 0 WHERE id = ?', kind, batchId);
  yield* sweepChunk(batchId, chunkItems, now);
}

/**
 * Does the next chunk of a batch's sweep: which sweep it was (null: the batch has none, or is
 * gone) and whether work is left ('more') or it is done. Running it again after a crash repeats nothing: each
 * chunk moves only items still in the state it moves them from, and advances the cursor in the
 * same transaction.
 */
export function* sweepChunk(batchId: string, chunkItems: number, now: number): Op<{ kind: SweepKind | null; left: 'more' | 'done' }> {
  const row = yield* get<SweepRow>({ sqlite: SWEEP_ROW, postgres: `${SWEEP_ROW} FOR UPDATE` }, batchId);
  if (!row || row.sweep === null) return { kind: null, left: 'done' };
  const limit = Math.max(1, chunkItems);
  let next: number | null;
  switch (row.sweep) {
    case 'cancel':
      next = yield* cancelChunk(batchId, row.cursor, limit, row.total, now);
      break;
    case 'retry':
      next = yield* retryChunk(batchId, row.cursor, limit, now);
      break;
    case 'delete':
      next = yield* deleteChunk(batchId, row.cursor, limit, row.total);
      break;
  }
  if (next !== null) {
    yield* run('UPDATE batches SET sweep_cursor = ? WHERE id = ?', next, batchId);
    return { kind: row.sweep, left: 'more' };
  }
  yield* finishSweep(batchId, row.sweep, now);
  return { kind: row.sweep, left: 'done' };
}

/** Batches with a sweep under way (what a starting dispatcher resumes). */
export function unfinishedSweeps(): Op<string[]> {
  return pluck<string>('SELECT id FROM batches WHERE sweep IS NOT NULL ORDER BY id');
}

/** Open items with index in [from, from + limit) → cancelled. The next cursor, or null at the end. */
function* cancelChunk(batchId: string, from: number, limit: number, total: number, now: number): Op<number | null> {
  const to = from + limit;
  const open = yield* get<{ pending: number; running: number }>(
    `SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) FILTER (WHERE status = 'running') AS running
       FROM items WHERE batch_id = ? AND idx >= ? AND idx < ? AND status IN ('pending', 'running')`,
    batchId,
    from,
    to,
  );
  const pending = Number(open?.pending ?? 0);
  const running = Number(open?.running ?? 0);
  if (pending + running > 0) {
    yield* run(
      `UPDATE items SET status = 'cancelled', lease_id = NULL, finished_at = ? WHERE batch_id = ? AND idx >= ? AND idx < ? AND status IN ('pending', 'running')`,
      now,
      batchId,
      from,
      to,
    );
    yield* bumpCounters(batchId, { pending: -pending, running: -running, cancelled: pending + running });
  }
  return to < total ? to : null;
}

/**
 * The next `limit` failed or cancelled items from index `from` → pending, with a fresh backoff
 * budget. Found through the partial index on those statuses (one ordered range per status,
 * merged), so a batch with few failures among millions of items costs a chunk, not a scan.
 */
function* retryChunk(batchId: string, from: number, limit: number, now: number): Op<number | null> {
  // `status IN (…)` repeats the partial index's own condition: SQLite uses a partial index only
  // when the query states its WHERE term.
  const ofStatus = `SELECT idx, status FROM items WHERE batch_id = ? AND status IN ('failed', 'cancelled') AND status = ? AND idx >= ? ORDER BY idx LIMIT ?`;
  const rows = yield* all<{ idx: number; status: 'failed' | 'cancelled' }>(
    `SELECT idx, status FROM (${ofStatus}) f UNION ALL SELECT idx, status FROM (${ofStatus}) c ORDER BY idx LIMIT ?`,
    batchId,
    'failed',
    from,
    limit,
    batchId,
    'cancelled',
    from,
    limit,
    limit,
  );
  if (rows.length === 0) return null;
  const last = Number(rows[rows.length - 1].idx);
  const failed = rows.filter((r) => r.status === 'failed').length;
  const cancelled = rows.length - failed;
  yield* run(
    `UPDATE items SET status = 'pending', failures = 0, not_before = ?, reason = NULL WHERE batch_id = ? AND idx >= ? AND idx <= ? AND status IN ('failed', 'cancelled')`,
    now,
    batchId,
    from,
    last,
  );
  yield* bumpCounters(batchId, { failed: -failed, cancelled: -cancelled, pending: failed + cancelled });
  return rows.length < limit ? null : last + 1;
}

/** Rows of items with index in [from, from + limit) and their attempts, removed. */
function* deleteChunk(batchId: string, from: number, limit: number, total: number): Op<number | null> {
  const to = from + limit;
  yield* run('DELETE FROM attempts WHERE batch_id = ? AND idx >= ? AND idx < ?', batchId, from, to);
  yield* run('DELETE FROM items WHERE batch_id = ? AND idx >= ? AND idx < ?', batchId, from, to);
  return to < total ? to : null;
}

/** The last chunk is done: the marker cleared, and what waited for it. */
function* finishSweep(batchId: string, kind: SweepKind, now: number): Op<void> {
  yield* run('UPDATE batches SET sweep = NULL, sweep_cursor = 0 WHERE id = ?', batchId);
  switch (kind) {
    case 'cancel':
      // A batch halted before this last chunk is final already: now its counts stand still.
      yield* settleFinal(batchId, true, now);
      break;
    case 'retry':
      // Every failed item is back: the batch may finish again as its items do.
      yield* refreshStatus(batchId, now);
      break;
    case 'delete':
      // What is left (labels, webhook events, …) goes with the row (ON DELETE CASCADE).
      yield* run("DELETE FROM batches WHERE id = ? AND state = 'deleting'", batchId);
      break;
  }
}
