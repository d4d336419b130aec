import { decideFailedAttempt, exceedsMaxFailedItems } from '../domain/failure-policy.js';
import type { ItemReport } from '../runtimes/queue/protocol.js';
import type { StoreHandle } from './db.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import { getBatchById } from './batch-queries.js';
import { bumpCounters, haltBatch, parseDecisions, refreshStatus, type CounterDelta } from './batch-state.js';
import { LeaseStore } from './leases.js';
import { ItemFailedEvents } from './webhook-events.js';

/**
 * Recording what workers report. One transaction per report: every item outcome, its attempt
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

export class ReportStore {
  private readonly leases: LeaseStore;
  private readonly current;
  private readonly succeed;
  private readonly backToPending;
  private readonly failItem;
  private readonly insertAttempt;
  private readonly batchSpec;
  private readonly succeedIfCurrent;

  constructor(private readonly store: StoreHandle) {
    const s = store.sqlite;
    this.leases = new LeaseStore(store);
    this.current = s.prepare('SELECT status, attempt, failures, lease_id AS leaseId FROM items WHERE batch_id = ? AND idx = ?');
    this.succeed = s.prepare(
      `UPDATE items SET status = 'succeeded', result = ?, result_blob = ?, error = NULL, reason = NULL, lease_id = NULL, finished_at = ? WHERE batch_id = ? AND idx = ?`,
    );
    this.backToPending = s.prepare(
      `UPDATE items SET status = 'pending', failures = failures + ?, not_before = ?, lease_id = NULL, error = coalesce(?, error) WHERE batch_id = ? AND idx = ?`,
    );
    this.failItem = s.prepare(
      `UPDATE items SET status = 'failed', failures = failures + 1, error = ?, reason = ?, lease_id = NULL, finished_at = ? WHERE batch_id = ? AND idx = ?`,
    );
    this.batchSpec = s.prepare("SELECT spec FROM batches WHERE id = ? AND state <> 'uploading'").pluck();
    this.succeedIfCurrent = s.prepare(
      `UPDATE items SET status = 'succeeded', result = ?, result_blob = ?, error = NULL, reason = NULL, lease_id = NULL, finished_at = ?
        WHERE batch_id = ? AND idx = ? AND status = 'running' AND attempt = ?`,
    );
    this.insertAttempt = s.prepare(
      `INSERT OR IGNORE INTO attempts (batch_id, idx, attempt, outcome, exit_code, http_status, condition, error, decision, worker, started_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /** Applies a worker's report for items of one batch; `leaseId` null for PUT …/result. */
  apply(batchId: string, leaseId: string | null, reports: ItemReport[], now = Date.now()): ApplyResult {
    return this.store.sqlite.transaction(() => this.applyInTransaction(batchId, leaseId, reports, now))();
  }

  private applyInTransaction(batchId: string, leaseId: string | null, reports: ItemReport[], now: number): ApplyResult {
    const out: ApplyResult = { applied: 0, succeeded: 0, failed: 0, phaseChanged: false };
    // The spec alone, through a prepared statement: this runs once per report.
    const spec = this.batchSpec.get(batchId) as string | undefined;
    if (spec === undefined) return out;
    const policy = (JSON.parse(spec) as BatchHeader).retry;
    const delta: CounterDelta = {};
    const add = (k: keyof CounterDelta, n: number) => (delta[k] = (delta[k] ?? 0) + n);
    const settled = new Set<string>();
    // A result PUT through the API names no lease: settle the lease the item travelled in.
    const viaApi = new Map<string, Set<string>>();
    let failBatch: { reason: string; message: string } | undefined;
    const itemEvents = new ItemFailedEvents(this.store, batchId);

    for (const r of reports) {
      settled.add(`${r.i}.${r.a}`);
      const error = r.error === undefined ? null : r.error.slice(-MAX_ERROR);
      const attemptRow = (outcome: string, decision: string | null) =>
        this.insertAttempt.run(batchId, r.i, r.a, outcome, r.exitCode ?? null, r.httpStatus ?? null, r.condition ?? null, error, decision, r.worker ?? null, r.startedAt ?? null, r.finishedAt ?? now);
      if (leaseId && r.outcome === 'succeeded') {
        // A worker's success (the common case): one conditional UPDATE both checks that the item
        // still runs this attempt and records it, instead of a SELECT and then an UPDATE.
        const result = r.resultBlob ? null : JSON.stringify(r.result ?? null);
        if (this.succeedIfCurrent.run(result, r.resultBlob ?? null, now, batchId, r.i, r.a).changes === 0) continue;
        out.applied++;
        add('running', -1);
        attemptRow('succeeded', null);
        add('succeeded', 1);
        out.succeeded++;
        continue;
      }
      const item = this.current.get(batchId, r.i) as LiveItem | undefined;
      if (!item || item.status !== 'running' || item.attempt !== r.a) continue;
      if (!leaseId && item.leaseId) {
        const set = viaApi.get(item.leaseId) ?? new Set<string>();
        viaApi.set(item.leaseId, set.add(`${r.i}.${r.a}`));
      }
      out.applied++;
      add('running', -1);
      if (r.outcome === 'returned') {
        // Not run (worker stopping, batch halted): back to pending, no attempt recorded.
        this.backToPending.run(0, 0, null, batchId, r.i);
        add('pending', 1);
        continue;
      }
      if (r.outcome === 'succeeded') {
        this.succeed.run(r.resultBlob ? null : JSON.stringify(r.result ?? null), r.resultBlob ?? null, now, batchId, r.i);
        attemptRow('succeeded', null);
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
      attemptRow('failed', decision.reason);
      if (decision.kind === 'retry') {
        this.backToPending.run(decision.counted ? 1 : 0, now + decision.delayMs, error, batchId, r.i);
        add('pending', 1);
        continue;
      }
      this.failItem.run(error ?? decision.message, decision.reason, now, batchId, r.i);
      itemEvents.record(r.i, decision.reason, error ?? decision.message, now);
      add('failed', 1);
      out.failed++;
      if (decision.kind === 'failBatch' && !failBatch) failBatch = { reason: decision.reason, message: `item ${r.i}: ${decision.message}` };
    }

    bumpCounters(this.store, batchId, delta);
    if (leaseId) this.leases.settle(leaseId, settled);
    for (const [id, pairs] of viaApi) this.leases.settle(id, pairs);
    if (out.failed > 0) {
      const fresh = getBatchById(this.store, batchId)!;
      if (!failBatch && exceedsMaxFailedItems(fresh.failed, policy)) {
        failBatch = { reason: 'MaxFailedItemsExceeded', message: `${fresh.failed} items failed, more than maxFailedItems (${policy.maxFailedItems})` };
      }
      if (failBatch && !parseDecisions(fresh).halt) haltBatch(this.store, fresh, { phase: 'Failed', ...failBatch, at: new Date(now).toISOString() }, now);
    }
    out.phaseChanged = refreshStatus(this.store, batchId, now).changed;
    return out;
  }
}
