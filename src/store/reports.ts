import { decideFailedAttempt, exceedsMaxFailedItems } from '../domain/failure-policy.js';
import type { ItemReport } from '../contracts/item-report.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import { dialect, get, pluck, run, type Op } from './op.js';
import { bumpCounters, haltBatch, lockBatch, parseDecisions, refreshStatus, type CounterDelta } from './batch-state.js';
import { settleLease } from './leases.js';
import { ItemFailedEvents } from './webhook-events.js';

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
const SUCCEED = `UPDATE items SET status = 'succeeded', result = ?, result_blob = ?, error = NULL, reason = NULL, lease_id = NULL, finished_at = ? WHERE batch_id = ? AND idx = ?`;
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

  // PostgreSQL: a worker's successes in two set-based statements (a round trip each) instead of
  // two per item, while the batch row is locked.
  let rest = reports;
  if (leaseId && (yield* dialect()) === 'postgres') {
    const successes = uniqueSuccesses(reports);
    if (successes.length > 0) {
      const applied = yield* recordSuccesses(batchId, successes, now);
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
      const result = r.resultBlob ? null : JSON.stringify(r.result ?? null);
      if ((yield* run(SUCCEED_IF_CURRENT, result, r.resultBlob ?? null, now, batchId, r.i, r.a)) === 0) continue;
      out.applied++;
      add('running', -1);
      yield* attemptRow('succeeded', null);
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
      yield* run(SUCCEED, r.resultBlob ? null : JSON.stringify(r.result ?? null), r.resultBlob ?? null, now, batchId, r.i);
      yield* attemptRow('succeeded', null);
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
  return out;
}

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

/**
 * Records successes (PostgreSQL): one UPDATE of the items still running the reported attempt,
 * then one INSERT of the attempt rows of exactly those. Returns how many were recorded.
 */
function* recordSuccesses(batchId: string, successes: ItemReport[], now: number): Op<number> {
  const recorded = yield* pluck<number>(
    `UPDATE items AS i SET status = 'succeeded', result = u.result, result_blob = u.blob, error = NULL, reason = NULL, lease_id = NULL, finished_at = ?
       FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[]) AS u(idx, attempt, result, blob)
      WHERE i.batch_id = ? AND i.idx = ANY(?::bigint[]) AND i.idx = u.idx AND i.status = 'running' AND i.attempt = u.attempt
      RETURNING i.idx`,
    now,
    successes.map((r) => r.i),
    successes.map((r) => r.a),
    successes.map((r) => (r.resultBlob ? null : JSON.stringify(r.result ?? null))),
    successes.map((r) => r.resultBlob ?? null),
    batchId,
    // The same indexes again, as `= ANY`: the planner then reads exactly these rows through the
    // primary key instead of joining the unnest with every row of the batch.
    successes.map((r) => r.i),
  );
  if (recorded.length === 0) return 0;
  const done = new Set(recorded);
  const rows = successes.filter((r) => done.has(r.i));
  yield* run(
    `INSERT INTO attempts (batch_id, idx, attempt, outcome, exit_code, http_status, condition, error, decision, worker, started_at, finished_at)
     SELECT ?, u.idx, u.attempt, 'succeeded', u.exit_code, u.http_status, u.condition, u.error, NULL, u.worker, u.started_at, u.finished_at
       FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[])
         AS u(idx, attempt, exit_code, http_status, condition, error, worker, started_at, finished_at)
     ON CONFLICT (batch_id, idx, attempt) DO NOTHING`,
    batchId,
    rows.map((r) => r.i),
    rows.map((r) => r.a),
    rows.map((r) => r.exitCode ?? null),
    rows.map((r) => r.httpStatus ?? null),
    rows.map((r) => r.condition ?? null),
    rows.map((r) => (r.error === undefined ? null : r.error.slice(-MAX_ERROR))),
    rows.map((r) => r.worker ?? null),
    rows.map((r) => r.startedAt ?? null),
    rows.map((r) => r.finishedAt ?? now),
  );
  return recorded.length;
}

/**
 * Applies several reports of one batch in one operation (one transaction, one lock of the batch
 * row), in order; the result of each. What the queue runtime's ReportRecorder batches together.
 */
export function* applyReportGroup(batchId: string, reports: { leaseId: string | null; items: ItemReport[] }[], now = Date.now()): Op<ApplyResult[]> {
  const results: ApplyResult[] = [];
  for (const r of reports) results.push(yield* applyReports(batchId, r.leaseId, r.items, now));
  return results;
}
