import { all, dialect, run, value, type Op } from './op.js';
import { lockBatch, parseDecisions, writeDecisions } from './batch-state.js';
import type { BatchRow } from './columns.js';
import type { Quotas } from '../domain/quotas.js';
import { tenantQuotas } from './quotas.js';

/**
 * Releasing items to workers. A release moves pending items to `running` with a new attempt
 * number and records the lease range they travel in, all in one operation; only after it
 * commits does the dispatcher add the lease to Redis. A crash in between leaves a lease the
 * resync finds missing from Redis and releases again, so nothing is lost.
 * Leases and attempts: docs/architecture.md#leases-and-attempts.
 */

export interface ReleasedItem {
  index: number;
  attempt: number;
  input: string;
}

export interface ReleasedLease {
  leaseId: string;
  items: ReleasedItem[];
}

export interface LeaseRow {
  id: string;
  batchId: string;
  task: string;
  outstanding: string;
  createdAt: number;
  missingSince: number | null;
}

type PendingRow = { idx: number; attempt: number; input: string };

/** Lease ids are deterministic from what they carry, so adding one twice to BullMQ is a no-op. */
export function leaseIdFor(batchId: string, first: { index: number; attempt: number }): string {
  return `${batchId}.${first.index}.${first.attempt}`;
}

// Items that ran before (retries, returned items) wait in the partial index items_retry; SQLite
// is told to use it (its planner may otherwise scan the primary key of a huge batch).
const RETRY_READY = {
  sqlite: `SELECT idx, attempt, input FROM items INDEXED BY items_retry
            WHERE batch_id = ? AND status = 'pending' AND attempt > 0 AND not_before <= ? ORDER BY not_before, idx LIMIT ?`,
  postgres: `SELECT idx, attempt, input FROM items
              WHERE batch_id = ? AND status = 'pending' AND attempt > 0 AND not_before <= ? ORDER BY not_before, idx LIMIT ?`,
};

/**
 * Releases up to `max` ready items of a batch in leases of at most `leaseSize` items: retries
 * first, then items never released, from the batch's release cursor on, in index order.
 * Releases nothing from a batch no longer active, halted or suspended.
 */
export function* releaseLeases(batchId: string, task: string, max: number, leaseSize: number, now: number): Op<ReleasedLease[]> {
  return (yield* releaseWithinQuota(batchId, task, max, leaseSize, now, null)).leases;
}

/** A release, and whether a quota of the batch's tenant held some of it back. */
export interface QuotaRelease {
  leases: ReleasedLease[];
  heldByQuota: boolean;
}

/**
 * `releaseLeases`, admitted against the runningItems quota of the batch's tenant (its overrides
 * over `quotaDefaults`; null: no quota): at most the quota minus the tenant's items running in
 * all its active batches are released, counted here from the store, so the quota holds whichever
 * dispatcher releases and after any restart. While items are held back the batch's decisions
 * say so (the QuotaExceeded condition); the first release that holds nothing back clears it.
 */
export function* releaseWithinQuota(batchId: string, task: string, max: number, leaseSize: number, now: number, quotaDefaults: Quotas | null): Op<QuotaRelease> {
  // Locked first, like every operation that moves a batch's items: a cancel committed meanwhile
  // is seen here, and never overwritten by the range UPDATE below.
  const batch = yield* lockBatch(batchId);
  if (!batch || batch.state !== 'active') return { leases: [], heldByQuota: false };
  const decisions = parseDecisions(batch);
  if (decisions.halt || decisions.suspended) return { leases: [], heldByQuota: false };
  let heldByQuota = false;
  if (quotaDefaults) {
    const room = yield* runningRoom(batch.tenantId, quotaDefaults);
    heldByQuota = room !== null && room.free < max;
    if (heldByQuota) max = room!.free;
    const hold = heldByQuota ? { quota: 'runningItems', message: `the tenant's runningItems quota (${room!.limit}) is in use: items wait until some of its running items finish` } : null;
    yield* recordQuotaHold(batch, hold, now);
    if (max <= 0) return { leases: [], heldByQuota };
  }
  return { leases: yield* releaseItems(batch, task, max, leaseSize, now), heldByQuota };
}

/** How many more items the tenant may have running under its runningItems quota, or null when unlimited. */
function* runningRoom(tenantId: string, quotaDefaults: Quotas): Op<{ limit: number; free: number } | null> {
  const limit = (yield* tenantQuotas(tenantId, quotaDefaults)).runningItems;
  if (limit === null) return null;
  const running = Number((yield* value<number>("SELECT coalesce(sum(running), 0) FROM batches WHERE tenant_id = ? AND state = 'active'", tenantId)) ?? 0);
  return { limit, free: Math.max(0, limit - running) };
}

/** Writes the batch's quota hold only when it changes (most releases change nothing). */
function* recordQuotaHold(batch: BatchRow, hold: { quota: string; message: string } | null, now: number): Op<void> {
  const decisions = parseDecisions(batch);
  const current = decisions.quotaHold ?? null;
  if (current?.quota === hold?.quota && current?.message === hold?.message) return;
  yield* writeDecisions(batch.id, { ...decisions, quotaHold: hold }, now);
}

function* releaseItems(batch: BatchRow, task: string, max: number, leaseSize: number, now: number): Op<ReleasedLease[]> {
  const batchId = batch.id;
  const releaseCursor = batch.releaseCursor;
  const rows = yield* all<PendingRow>(RETRY_READY, batchId, now, max);
  let cursor = releaseCursor;
  if (rows.length < max) {
    const fresh = yield* freshItems(batchId, releaseCursor, max - rows.length);
    if (fresh.length > 0) cursor = fresh[fresh.length - 1].idx + 1;
    // not push(...fresh): spreading more than ~120,000 rows overflows the call stack
    for (const row of fresh) rows.push(row);
  }
  const out: ReleasedLease[] = [];
  for (let k = 0; k < rows.length; k += leaseSize) {
    const chunk = rows.slice(k, k + leaseSize).map((r) => ({ index: r.idx, attempt: r.attempt + 1, input: r.input }));
    out.push({ leaseId: leaseIdFor(batchId, chunk[0]), items: chunk });
  }
  if ((yield* dialect()) === 'postgres') yield* recordLeasesAtOnce(batchId, task, out, now);
  else for (const lease of out) yield* recordLease(batchId, task, lease, now);
  if (rows.length > 0) {
    yield* run(
      'UPDATE batches SET pending = pending - ?, running = running + ?, release_cursor = CASE WHEN release_cursor > ? THEN release_cursor ELSE ? END WHERE id = ?',
      rows.length,
      rows.length,
      cursor,
      cursor,
      batchId,
    );
  }
  return out;
}

/**
 * Consecutive indexes with one attempt number (fresh items: the usual case): the lease's items are
 * exactly the rows from its first index to its last (idx is the key).
 */
function isRange(items: ReleasedItem[]): boolean {
  const first = items[0];
  return items.every((it, j) => it.index === first.index + j && it.attempt === first.attempt);
}

const RUN_ITEM = `UPDATE items SET status = 'running', attempt = ?, lease_id = ?, started_at = ? WHERE batch_id = ? AND idx = ?`;
const RUN_RANGE = `UPDATE items SET status = 'running', attempt = ?, lease_id = ?, started_at = ? WHERE batch_id = ? AND idx BETWEEN ? AND ?`;
const INSERT_LEASE = 'INSERT INTO leases (id, batch_id, task, outstanding, created_at) VALUES (?, ?, ?, ?, ?)';
const outstandingOf = (lease: ReleasedLease): string => JSON.stringify(lease.items.map((it) => [it.index, it.attempt]));

/** Moves a lease's items to running and records the lease: a range UPDATE when its items are one. */
function* recordLease(batchId: string, task: string, lease: ReleasedLease, now: number): Op<void> {
  const first = lease.items[0];
  const last = lease.items[lease.items.length - 1];
  if (isRange(lease.items)) {
    yield* run(RUN_RANGE, first.attempt, lease.leaseId, now, batchId, first.index, last.index);
  } else {
    for (const item of lease.items) yield* run(RUN_ITEM, item.attempt, lease.leaseId, now, batchId, item.index);
  }
  yield* run(INSERT_LEASE, lease.leaseId, batchId, task, outstandingOf(lease), now);
}

/**
 * recordLease for every lease of a release (PostgreSQL), each statement a round trip there: the
 * leases that are ranges in one UPDATE and all leases in one INSERT, instead of two statements a
 * lease (about 24 for a release of 6,000 items) while the batch row is locked. The UPDATE is
 * bounded by the span of those ranges as well, so that its plan reads about the released rows
 * even before PostgreSQL has statistics on a new batch (see freshItems).
 */
function* recordLeasesAtOnce(batchId: string, task: string, leases: ReleasedLease[], now: number): Op<void> {
  if (leases.length === 0) return;
  const ranges: { id: string; lo: number; hi: number; a: number }[] = [];
  for (const lease of leases) {
    if (!isRange(lease.items)) {
      for (const item of lease.items) yield* run(RUN_ITEM, item.attempt, lease.leaseId, now, batchId, item.index);
      continue;
    }
    ranges.push({ id: lease.leaseId, lo: lease.items[0].index, hi: lease.items[lease.items.length - 1].index, a: lease.items[0].attempt });
  }
  if (ranges.length === 1) {
    const [r] = ranges;
    yield* run(RUN_RANGE, r.a, r.id, now, batchId, r.lo, r.hi);
  } else if (ranges.length > 1) {
    let lowest = ranges[0].lo;
    let highest = ranges[0].hi;
    for (const r of ranges) {
      if (r.lo < lowest) lowest = r.lo;
      if (r.hi > highest) highest = r.hi;
    }
    yield* run(
      `UPDATE items AS i SET status = 'running', attempt = u.a, lease_id = u.id, started_at = ?
         FROM json_to_recordset(?::json) AS u(id text, lo bigint, hi bigint, a bigint)
        WHERE i.batch_id = ? AND i.idx BETWEEN ? AND ? AND i.idx BETWEEN u.lo AND u.hi`,
      now,
      JSON.stringify(ranges),
      batchId,
      lowest,
      highest,
    );
  }
  yield* run(
    `INSERT INTO leases (id, batch_id, task, outstanding, created_at)
     SELECT u.id, ?, ?, u.outstanding, ? FROM json_to_recordset(?::json) AS u(id text, outstanding text)`,
    batchId,
    task,
    now,
    JSON.stringify(leases.map((lease) => ({ id: lease.leaseId, outstanding: outstandingOf(lease) }))),
  );
}

const FRESH_IN_WINDOW = `SELECT idx, attempt, input FROM items WHERE batch_id = ? AND idx >= ? AND idx < ? AND status = 'pending' ORDER BY idx LIMIT ?`;
const FRESH_FROM = `SELECT idx, attempt, input FROM items WHERE batch_id = ? AND idx >= ? AND status = 'pending' ORDER BY idx LIMIT ?`;

/**
 * The first `count` pending items from index `from` on, in index order. Read in two steps so that
 * the usual case is a bounded range of the primary key: items at or past the release cursor were
 * never released, so the `count` indexes after it are normally all pending. Only when some of them
 * are not does the second, open-ended read look further. An open-ended read first was at the
 * planner's mercy: before PostgreSQL has statistics on a new batch (autovacuum analyzes a minute
 * or so after its ingest) it estimated a few rows for `idx >= ?` and read every remaining item of
 * the batch through a bitmap scan to sort them, instead of walking the key and stopping at
 * `count`: 38 ms instead of 0.4 ms for 1,024 of 40,000 remaining items.
 */
function* freshItems(batchId: string, from: number, count: number): Op<PendingRow[]> {
  const rows = yield* all<PendingRow>(FRESH_IN_WINDOW, batchId, from, from + count, count);
  if (rows.length < count) {
    const further = yield* all<PendingRow>(FRESH_FROM, batchId, from + count, count - rows.length);
    // not push(...further): spreading more than ~120,000 rows overflows the call stack
    for (const row of further) rows.push(row);
  }
  return rows;
}

/** Earliest time a waiting retry becomes ready, or null. */
export function* nextRetryAt(batchId: string): Op<number | null> {
  const text = `SELECT min(not_before) AS t FROM items WHERE batch_id = ? AND status = 'pending' AND attempt > 0`;
  return (yield* value<number | null>({ sqlite: text.replace('FROM items', 'FROM items INDEXED BY items_retry'), postgres: text }, batchId)) ?? null;
}

/** Leases of a batch (the resync's view of what should be in Redis). */
export function leasesOf(batchId: string): Op<LeaseRow[]> {
  return all<LeaseRow>('SELECT id, batch_id AS "batchId", task, outstanding, created_at AS "createdAt", missing_since AS "missingSince" FROM leases WHERE batch_id = ?', batchId);
}

export function* markLeaseMissing(leaseId: string, since: number | null): Op<void> {
  yield* run('UPDATE leases SET missing_since = ? WHERE id = ?', since, leaseId);
}

/** Removes reported [index, attempt] pairs from a lease; deletes it once nothing is outstanding. */
export function* settleLease(leaseId: string, reported: Set<string>): Op<void> {
  const outstanding = yield* value<string>('SELECT outstanding FROM leases WHERE id = ?', leaseId);
  if (outstanding === undefined) return;
  const left = (JSON.parse(outstanding) as [number, number][]).filter(([i, a]) => !reported.has(`${i}.${a}`));
  if (left.length === 0) yield* run('DELETE FROM leases WHERE id = ?', leaseId);
  else yield* run('UPDATE leases SET outstanding = ? WHERE id = ?', JSON.stringify(left), leaseId);
}

/**
 * settleLease for several leases (PostgreSQL): one read of them all, one DELETE of those nothing is
 * left outstanding of, an UPDATE for each of the others.
 */
export function* settleLeases(reported: Map<string, Set<string>>): Op<void> {
  const rows = yield* all<{ id: string; outstanding: string }>('SELECT id, outstanding FROM leases WHERE id = ANY(?::text[])', [...reported.keys()]);
  const done: string[] = [];
  for (const row of rows) {
    const keys = reported.get(row.id)!;
    const left = (JSON.parse(row.outstanding) as [number, number][]).filter(([i, a]) => !keys.has(`${i}.${a}`));
    if (left.length === 0) done.push(row.id);
    else yield* run('UPDATE leases SET outstanding = ? WHERE id = ?', JSON.stringify(left), row.id);
  }
  if (done.length > 0) yield* run('DELETE FROM leases WHERE id = ANY(?::text[])', done);
}
