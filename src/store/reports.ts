import { decideFailedAttempt, exceedsMaxFailedItems } from '../domain/failure-policy.js';
import type { ItemReport } from '../contracts/item-report.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import { dialect, get, pluck, run, type Op } from './op.js';
import { bumpCounters, haltBatch, lockBatch, parseDecisions, refreshStatus, type CounterDelta } from './batch-state.js';
import { settleLease, settleLeases } from './leases.js';
import { ItemFailedEvents } from './webhook-events.js';
import { addUsage } from './quotas.js';

/**
 * Recording what workers report. One operation per report: every item outcome, its attempt
 * row, the counters, the failure policy's verdict and the re-derived phase commit together.
 *
 * Exactly once per attempt: an item outcome is applied only while the item is `running` with
 * the same attempt number the report carries. A report from an expired lease, a duplicate
 * report, or one for a cancelled item changes nothing.
 * The item transitions recorded here: docs/architecture.md#item-state-machine.
 */

const MAX_ERROR = 4096;

export interface ApplyResult {
  /** outcomes actually recorded (stale ones are not counted) */
  applied: number;
  succeeded: number;
  failed: number;
  phaseChanged: boolean;
}

type LiveItem = { status: string; attempt: number; failures: number; leaseId: string | null };

const INSERT_ATTEMPT = `INSERT INTO attempts (batch_id, idx, attempt, outcome, exit_code, http_status, condition, error, decision, worker, started_at, finished_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (batch_id, idx, attempt) DO NOTHING`;
const SUCCEED = `UPDATE items SET status = 'succeeded', result = ?, result_blob = ?, error = NULL, reason = NULL, lease_id = NULL, finished_at = ?,
  worker = ?, exit_code = ?, http_status = ?, attempt_started_at = ?, attempt_finished_at = ? WHERE batch_id = ? AND idx = ?`;
const SUCCEED_IF_CURRENT = `${SUCCEED} AND status = 'running' AND attempt = ?`;
const BACK_TO_PENDING = `UPDATE items SET status = 'pending', failures = failures + ?, not_before = ?, lease_id = NULL, error = coalesce(?, error) WHERE batch_id = ? AND idx = ?`;
const LIVE_ITEM_TEXT = 'SELECT status, attempt, failures, lease_id AS "leaseId" FROM items WHERE batch_id = ? AND idx = ?';
const LIVE_ITEM = { sqlite: LIVE_ITEM_TEXT, postgres: `${LIVE_ITEM_TEXT} FOR UPDATE` };
const FAIL_ITEM = `UPDATE items SET status = 'failed', failures = failures + 1, error = ?, reason = ?, lease_id = NULL, finished_at = ? WHERE batch_id = ? AND idx = ?`;

/** Applies a worker's report for items of one batch; `leaseId` null for PUT …/result. */
export function* applyReports(batchId: string, leaseId: string | null, reports: ItemReport[], now = Date.now()): Op<ApplyResult> {
  const out: ApplyResult = { applied: 0, succeeded: 0, failed: 0, phaseChanged: false };
  // Locked first, like every operation that moves a batch's items (no deadlock among them).
  const batch = yield* lockBatch(batchId);
  // A final batch has no running item, or (halted, its open items still being cancelled in
  // chunks) none that may still record a result: what a worker reports for it is too late.
  if (!batch || batch.state !== 'active') return out;
  const policy = (JSON.parse(batch.spec) as BatchHeader).retry;
  const delta: CounterDelta = {};
  const add = (k: keyof CounterDelta, n: number) => (delta[k] = (delta[k] ?? 0) + n);
  const settled = new Set<string>();
  // A result PUT through the API names no lease: settle the lease the item travelled in.
  const viaApi = new Map<string, Set<string>>();
  let failBatch: { reason: string; message: string } | undefined;
  const itemEvents = new ItemFailedEvents(batchId);
  const usage = new ReportUsage(now);

  // PostgreSQL: a worker's successes in two set-based statements (a round trip each) instead of
  // two per item, while the batch row is locked.
  let rest = reports;
  if (leaseId && (yield* dialect()) === 'postgres') {
    const successes = uniqueSuccesses(reports);
    if (successes.length > 0) {
      const { rows } = yield* recordSuccesses(batchId, successes, now);
      for (const r of rows) usage.ran(r, true);
      const applied = rows.length;
      out.applied += applied;
      out.succeeded += applied;
      add('running', -applied);
      add('succeeded', applied);
      for (const r of successes) settled.add(`${r.i}.${r.a}`);
      rest = reports.filter((r) => r.outcome !== 'succeeded');
    }
  }

  for (const r of rest) {
    settled.add(`${r.i}.${r.a}`);
    const error = r.error === undefined ? null : r.error.slice(-MAX_ERROR);
    const attemptRow = (outcome: string, decision: string | null) =>
      run(INSERT_ATTEMPT, batchId, r.i, r.a, outcome, r.exitCode ?? null, r.httpStatus ?? null, r.condition ?? null, error, decision, r.worker ?? null, r.startedAt ?? null, r.finishedAt ?? now);
    if (leaseId && r.outcome === 'succeeded') {
      // A worker's success (the common case): one conditional UPDATE both checks that the item
      // still runs this attempt and records it, instead of a SELECT and then an UPDATE.
      if ((yield* run(SUCCEED_IF_CURRENT, ...successValues(r, now), batchId, r.i, r.a)) === 0) continue;
      usage.ran(r, true);
      out.applied++;
      add('running', -1);
      if (needsAttemptRow(r)) yield* attemptRow('succeeded', null);
      add('succeeded', 1);
      out.succeeded++;
      continue;
    }
    const item = yield* get<LiveItem>(LIVE_ITEM, batchId, r.i);
    if (!item || item.status !== 'running' || item.attempt !== r.a) continue;
    if (!leaseId && item.leaseId) {
      const set = viaApi.get(item.leaseId) ?? new Set<string>();
      viaApi.set(item.leaseId, set.add(`${r.i}.${r.a}`));
    }
    out.applied++;
    add('running', -1);
    if (r.outcome === 'returned') {
      // Not run (worker stopping, batch halted): back to pending, no attempt recorded.
      yield* run(BACK_TO_PENDING, 0, 0, null, batchId, r.i);
      add('pending', 1);
      continue;
    }
    if (r.outcome === 'succeeded') {
      yield* run(SUCCEED, ...successValues(r, now), batchId, r.i);
      usage.ran(r, true);
      if (needsAttemptRow(r)) yield* attemptRow('succeeded', null);
      add('succeeded', 1);
      out.succeeded++;
      continue;
    }
    const decision = r.nonRetriable
      ? ({ kind: 'failItem', reason: 'NonRetriableError', message: error ?? 'the task raised a non-retriable error' } as const)
      : decideFailedAttempt(
          { exitCode: r.exitCode, httpStatus: r.httpStatus, condition: r.condition, networkError: r.networkError, retryAfterMs: r.retryAfterMs },
          policy,
          item.failures,
        );
    yield* attemptRow('failed', decision.reason);
    usage.ran(r, false);
    if (decision.kind === 'retry') {
      yield* run(BACK_TO_PENDING, decision.counted ? 1 : 0, now + decision.delayMs, error, batchId, r.i);
      add('pending', 1);
      continue;
    }
    yield* run(FAIL_ITEM, error ?? decision.message, decision.reason, now, batchId, r.i);
    yield* itemEvents.record(r.i, decision.reason, error ?? decision.message, now);
    add('failed', 1);
    out.failed++;
    if (decision.kind === 'failBatch' && !failBatch) failBatch = { reason: decision.reason, message: `item ${r.i}: ${decision.message}` };
  }

  yield* bumpCounters(batchId, delta);
  if (leaseId) yield* settleLease(leaseId, settled);
  for (const [id, pairs] of viaApi) yield* settleLease(id, pairs);
  if (out.failed > 0) {
    const fresh = (yield* lockBatch(batchId))!;
    if (!failBatch && exceedsMaxFailedItems(fresh.failed, policy)) {
      failBatch = { reason: 'MaxFailedItemsExceeded', message: `${fresh.failed} items failed, more than maxFailedItems (${policy.maxFailedItems})` };
    }
    if (failBatch && !parseDecisions(fresh).halt) yield* haltBatch(fresh, { phase: 'Failed', ...failBatch, at: new Date(now).toISOString() }, now);
  }
  out.phaseChanged = (yield* refreshStatus(batchId, now)).changed;
  // Last: on PostgreSQL the tenant's usage row stays locked until the commit, and reports of the
  // tenant's other batches wait for it; taken here, that wait is as short as it can be.
  yield* usage.record(batch.tenantId, batchId);
  return out;
}

/**
 * What the attempts a report recorded used, added to the batch's stored result bytes and to its
 * tenant's usage of the day in the report's own transaction (after the batch row's lock, the
 * order every operation that records usage keeps).
 */
class ReportUsage {
  private itemsRun = 0;
  private itemMs = 0;
  private resultBytes = 0;

  constructor(private readonly now: number) {}

  ran(r: ItemReport, succeeded: boolean): void {
    this.itemsRun++;
    if (r.startedAt !== undefined) this.itemMs += Math.max(0, (r.finishedAt ?? this.now) - r.startedAt);
    if (succeeded) this.resultBytes += r.resultBlob ? (r.resultBytes ?? 0) : Buffer.byteLength(JSON.stringify(r.result ?? null));
  }

  *record(tenantId: string, batchId: string): Op<void> {
    if (this.itemsRun === 0) return;
    if (this.resultBytes > 0) yield* run('UPDATE batches SET result_bytes = result_bytes + ? WHERE id = ?', this.resultBytes, batchId);
    yield* addUsage(tenantId, this.now, { itemsRun: this.itemsRun, itemMs: this.itemMs, resultBytes: this.resultBytes });
  }
}

/**
 * The string with each lone surrogate (one half of a UTF-16 pair, as cutting an error's tail can
 * leave) replaced by U+FFFD, so that both stores keep the same text: PostgreSQL refuses the \u
 * escape JSON.stringify writes for one inside a json parameter, and SQLite would keep its bytes.
 */
const wellFormed = (s: string): string => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');

/**
 * What SUCCEED sets, in its order: the result (inline JSON or a blob), the time it was recorded,
 * and the attempt itself, kept in the item row (see the items table's schema).
 */
function successValues(r: ItemReport, now: number): unknown[] {
  const result = r.resultBlob ? null : JSON.stringify(r.result ?? null);
  return [result, r.resultBlob ?? null, now, r.worker === undefined ? null : wellFormed(r.worker), r.exitCode ?? null, r.httpStatus ?? null, r.startedAt ?? null, r.finishedAt ?? now];
}

/**
 * A succeeded attempt is kept in its item's row, which has no place for a condition or an error:
 * a success that carries either (no task reports one today) gets an `attempts` row as well, which
 * the attempt history then shows instead.
 */
const needsAttemptRow = (r: ItemReport): boolean => r.error !== undefined || r.condition !== undefined;

/** A report's successes, each (index, attempt) once. */
function uniqueSuccesses(reports: ItemReport[]): ItemReport[] {
  const seen = new Set<string>();
  return reports.filter((r) => {
    if (r.outcome !== 'succeeded') return false;
    const key = `${r.i}.${r.a}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** `index.attempt`: what identifies an item's attempt in a report, a lease and a group of reports. */
const attemptKey = (i: number, a: number): string => `${i}.${a}`;

/**
 * Records successes (PostgreSQL): one UPDATE of the items still running the reported attempt,
 * which keeps each attempt in its item row; only a success that needs an `attempts` row as well
 * (needsAttemptRow) gets one, in one INSERT. Returns the attempts recorded (attemptKey) and their
 * reports.
 *
 * The reports travel as one JSON parameter read with json_to_recordset: V8 serializes it natively,
 * where the driver escaped every element of one array parameter per column in JavaScript (the
 * server's largest cost per item on this path, taken while the batch row is locked).
 */
function* recordSuccesses(batchId: string, successes: ItemReport[], now: number): Op<{ keys: Set<string>; rows: ItemReport[] }> {
  let lowest = successes[0].i;
  let highest = lowest;
  const indexes: number[] = [];
  const values: unknown[] = [];
  for (const r of successes) {
    if (r.i < lowest) lowest = r.i;
    if (r.i > highest) highest = r.i;
    indexes.push(r.i);
    // result: the JSON text to store, as a string (SQL NULL when the result is a blob)
    values.push({
      i: r.i,
      a: r.a,
      r: r.resultBlob ? null : JSON.stringify(r.result ?? null),
      b: r.resultBlob ?? null,
      w: r.worker === undefined ? null : wellFormed(r.worker),
      e: r.exitCode ?? null,
      h: r.httpStatus ?? null,
      s: r.startedAt ?? null,
      f: r.finishedAt ?? now,
    });
  }
  const recorded = yield* pluck<string>(
    `UPDATE items AS i SET status = 'succeeded', result = u.r, result_blob = u.b, error = NULL, reason = NULL, lease_id = NULL, finished_at = ?,
            worker = u.w, exit_code = u.e, http_status = u.h, attempt_started_at = u.s, attempt_finished_at = u.f
       FROM json_to_recordset(?::json) AS u(i bigint, a bigint, r text, b text, w text, e bigint, h bigint, s bigint, f bigint)
      WHERE i.batch_id = ? AND i.idx = ANY(?::bigint[]) AND i.idx BETWEEN ? AND ? AND i.idx = u.i AND i.status = 'running' AND i.attempt = u.a
      RETURNING i.idx || '.' || i.attempt`,
    now,
    JSON.stringify(values),
    batchId,
    // The same indexes again, as `= ANY` and as the range they span (a lease's items are usually
    // consecutive): the planner then reads exactly these rows, or at worst the range, through the
    // primary key instead of joining the recordset with every row of the batch. The range is what
    // holds before PostgreSQL has statistics on a new batch: it then estimates a few rows for the
    // whole batch, keeps `= ANY` as a mere filter, and without the range read every item of the
    // batch for each report (up to 90 ms a report of 115 items on a 50,000-item batch, 1 ms with it).
    // An array literal of integers needs no escaping: written here, not element by element by the driver.
    `{${indexes.join(',')}}`,
    lowest,
    highest,
  );
  const done = new Set(recorded);
  if (done.size === 0) return { keys: done, rows: [] };
  // By attempt, not index: a stale attempt of an item reported next to its current one gets no row.
  const rows = successes.filter((r) => done.has(attemptKey(r.i, r.a)));
  const withRow = rows.filter(needsAttemptRow);
  if (withRow.length > 0) {
    yield* run(
      `INSERT INTO attempts (batch_id, idx, attempt, outcome, exit_code, http_status, condition, error, decision, worker, started_at, finished_at)
       SELECT ?, u.i, u.a, 'succeeded', u.e, u.h, u.c, u.x, NULL, u.w, u.s, u.f
         FROM json_to_recordset(?::json) AS u(i bigint, a bigint, e bigint, h bigint, c text, x text, w text, s bigint, f bigint)
       ON CONFLICT (batch_id, idx, attempt) DO NOTHING`,
      batchId,
      JSON.stringify(
        withRow.map((r) => ({
          i: r.i,
          a: r.a,
          e: r.exitCode ?? null,
          h: r.httpStatus ?? null,
          c: r.condition ?? null,
          x: r.error === undefined ? null : wellFormed(r.error.slice(-MAX_ERROR)),
          w: r.worker === undefined ? null : wellFormed(r.worker),
          s: r.startedAt ?? null,
          f: r.finishedAt ?? now,
        })),
      ),
    );
  }
  return { keys: done, rows };
}

/**
 * Applies several reports of one batch in one operation (one transaction, one lock of the batch
 * row), in order; the result of each. What the queue runtime's ReportRecorder batches together.
 */
export function* applyReportGroup(batchId: string, reports: { leaseId: string | null; items: ItemReport[] }[], now = Date.now()): Op<ApplyResult[]> {
  if (reports.length > 1 && reports.every(isWorkerSuccesses) && (yield* dialect()) === 'postgres') return yield* applySuccessGroup(batchId, reports, now);
  const results: ApplyResult[] = [];
  for (const r of reports) results.push(yield* applyReports(batchId, r.leaseId, r.items, now));
  return results;
}

/** A worker's report (it names its lease) of successes only: the usual report. */
function isWorkerSuccesses(report: { leaseId: string | null; items: ItemReport[] }): report is { leaseId: string; items: ItemReport[] } {
  return report.leaseId !== null && report.items.every((r) => r.outcome === 'succeeded');
}

/**
 * PostgreSQL: a group of workers' reports that are all successes (what the ReportRecorder usually
 * holds) recorded with one UPDATE of the items and one INSERT of the attempt rows for the whole
 * group, one counter update, one read of its leases and one status refresh, instead of all of
 * those per report while the batch row is locked. The outcome is what applying the reports one
 * by one gives: each attempt recorded once, credited to the first report naming it.
 */
function* applySuccessGroup(batchId: string, reports: { leaseId: string; items: ItemReport[] }[], now: number): Op<ApplyResult[]> {
  const results: ApplyResult[] = reports.map(() => ({ applied: 0, succeeded: 0, failed: 0, phaseChanged: false }));
  // Locked first, like every operation that moves a batch's items.
  const batch = yield* lockBatch(batchId);
  if (!batch) return results;
  const successes: ItemReport[] = [];
  for (const report of reports) for (const item of report.items) successes.push(item);
  const { keys: recorded, rows } = yield* recordSuccesses(batchId, uniqueSuccesses(successes), now);
  const usage = new ReportUsage(now);
  for (const r of rows) usage.ran(r, true);
  const credited = new Set<string>();
  reports.forEach((report, k) => {
    for (const item of report.items) {
      const key = attemptKey(item.i, item.a);
      if (!recorded.has(key) || credited.has(key)) continue;
      credited.add(key);
      results[k].applied++;
      results[k].succeeded++;
    }
  });
  yield* bumpCounters(batchId, { running: -credited.size, succeeded: credited.size });
  const reportedByLease = new Map<string, Set<string>>();
  for (const report of reports) {
    const keys = reportedByLease.get(report.leaseId) ?? new Set<string>();
    for (const item of report.items) keys.add(attemptKey(item.i, item.a));
    reportedByLease.set(report.leaseId, keys);
  }
  yield* settleLeases(reportedByLease);
  results[results.length - 1].phaseChanged = (yield* refreshStatus(batchId, now)).changed;
  // last, as in applyReports: the tenant's usage row stays locked until the commit
  yield* usage.record(batch.tenantId, batchId);
  return results;
}
