import { decideFailedAttempt } from '../domain/failure-policy.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import type { Condition } from '../domain/batch-status.js';
import type { StoreHandle } from './db.js';
import { getBatchById } from './batch-queries.js';
import { bumpCounters, haltBatch, parseDecisions, parseStatus, refreshStatus, type CounterDelta } from './batch-state.js';
import { batches } from './schema.js';
import { eq } from 'drizzle-orm';
import type { BatchObservation } from '../runtimes/kubernetes/observe.js';
import type { IndexRange } from '../domain/index-ranges.js';
import { ItemFailedEvents } from './webhook-events.js';

/**
 * Mirroring what Kubernetes reports into the store, for batches whose items run as Job pods.
 * Kubernetes decides (the job controller applies backoffLimitPerIndex, podFailurePolicy and
 * maxFailedIndexes); the store records: items follow the Job's completedIndexes, failedIndexes
 * and active pods, every terminated pod becomes one attempt row, and a failed Job halts the batch
 * with the Job's own reason and message. One transaction per observation; applying the same
 * observation twice changes nothing.
 * The Kubernetes side: docs/architecture.md#kubernetes-runtimes.
 */

const MAX_ERROR = 4096;

export class KubernetesSync {
  private readonly insertAttempt;
  private readonly markRunning;
  private readonly backToPending;
  private readonly runningItems;
  private readonly itemsInRangeWithStatus;
  private readonly reasonAndError;
  private readonly itemStatus;
  private readonly lastFailure;
  private readonly recordResult;

  constructor(private readonly store: StoreHandle) {
    const s = store.sqlite;
    this.insertAttempt = s.prepare(
      `INSERT OR IGNORE INTO attempts (batch_id, idx, attempt, outcome, exit_code, http_status, condition, error, decision, worker, started_at, finished_at)
       VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)`,
    );
    this.markRunning = s.prepare(
      `UPDATE items SET status = 'running', attempt = ?, started_at = coalesce(started_at, ?) WHERE batch_id = ? AND idx = ? AND status IN ('pending', 'running') AND (status <> 'running' OR attempt <> ?)`,
    );
    this.backToPending = s.prepare(`UPDATE items SET status = 'pending' WHERE batch_id = ? AND idx = ? AND status = 'running'`);
    this.runningItems = s.prepare(`SELECT idx FROM items WHERE batch_id = ? AND status = 'running'`).pluck();
    this.itemsInRangeWithStatus = s.prepare('SELECT idx FROM items WHERE batch_id = ? AND idx BETWEEN ? AND ? AND status = ?').pluck();
    this.reasonAndError = s.prepare('SELECT reason, error FROM items WHERE batch_id = ? AND idx = ?');
    this.itemStatus = s.prepare('SELECT status FROM items WHERE batch_id = ? AND idx = ?').pluck();
    this.lastFailure = s.prepare(
      `SELECT exit_code AS exitCode, condition, error FROM attempts WHERE batch_id = ? AND idx = ? AND outcome = 'failed' ORDER BY attempt DESC LIMIT 1`,
    );
    this.recordResult = s.prepare(
      `UPDATE items SET result = ?, result_blob = ?
        WHERE batch_id = ? AND idx = ? AND status IN ('pending', 'running', 'succeeded') AND result IS NULL AND result_blob IS NULL`,
    );
  }

  /** Applies one observation of a batch's Jobs and pods; true when anything changed. */
  apply(batchId: string, obs: BatchObservation, now = Date.now()): boolean {
    return this.store.sqlite.transaction(() => this.applyInTransaction(batchId, obs, now))();
  }

  /**
   * Keeps the result `fanout exec` PUT for an item whose pod is still running (the pod succeeds
   * only after the PUT returned, so the result is there before the Job counts the index). The
   * first result of an item is the one kept: one conditional UPDATE decides among concurrent or
   * repeated uploads (a pod's retried PUT, a later pod after one that uploaded and then died), so
   * a recorded result, and the blob a download may be reading, is never replaced. False when the
   * item already has a result, failed or was cancelled.
   */
  storeResult(batchId: string, index: number, result: string | null, blob: string | null): boolean {
    return this.recordResult.run(result, blob, batchId, index).changes > 0;
  }

  private applyInTransaction(batchId: string, obs: BatchObservation, now: number): boolean {
    const row = getBatchById(this.store, batchId);
    if (!row || row.state !== 'active') return false;
    const policy = (JSON.parse(row.spec) as BatchHeader).retry;
    let changed = false;
    const delta: CounterDelta = {};
    const add = (k: keyof CounterDelta, n: number) => (delta[k] = (delta[k] ?? 0) + n);

    for (const a of obs.attempts) {
      const decision =
        a.outcome === 'failed' ? decideFailedAttempt({ exitCode: a.exitCode, condition: a.condition }, policy, 0).reason : null;
      const error = a.message ? a.message.slice(-MAX_ERROR) : null;
      const r = this.insertAttempt.run(batchId, a.index, a.attempt, a.outcome, a.exitCode ?? null, a.condition ?? null, error, decision, a.podName, a.startedAt ?? null, a.finishedAt);
      if (r.changes > 0) changed = true;
    }

    // Final states first: an index the Job completed or failed leaves pending/running for good.
    const itemEvents = new ItemFailedEvents(this.store, batchId);
    const newlyFailed: number[] = [];
    for (const [status, ranges] of [['succeeded', obs.completed], ['failed', obs.failed]] as const) {
      for (const { first, last } of ranges) {
        for (const from of ['pending', 'running'] as const) {
          if (status === 'failed' && itemEvents.wanted()) {
            const ids = this.itemsInRangeWithStatus.all(batchId, first, last, from) as number[];
            newlyFailed.push(...ids);
          }
          const moved = this.finish(batchId, first, last, from, status, now);
          if (moved > 0) {
            changed = true;
            add(from, -moved);
            add(status, moved);
          }
        }
      }
    }
    if (obs.failed.length > 0) this.explainFailures(batchId, obs.failed, policy);
    for (const index of newlyFailed) {
      const item = this.reasonAndError.get(batchId, index) as { reason: string | null; error: string | null };
      itemEvents.record(index, item.reason, item.error, now);
    }

    for (const [index, attempt] of obs.running) {
      const before = this.itemStatus.get(batchId, index) as string | undefined;
      if (this.markRunning.run(attempt, now, batchId, index, attempt).changes > 0) {
        changed = true;
        if (before === 'pending') {
          add('pending', -1);
          add('running', 1);
        }
      }
    }
    // Running in the store but with no live pod and not finished: waiting for its next pod.
    for (const index of this.runningItems.all(batchId) as number[]) {
      if (obs.running.has(index)) continue;
      if (this.backToPending.run(batchId, index).changes > 0) {
        changed = true;
        add('running', -1);
        add('pending', 1);
      }
    }
    bumpCounters(this.store, batchId, delta);

    if (obs.jobFailed && !parseDecisions(row).halt) {
      haltBatch(this.store, getBatchById(this.store, batchId)!, { phase: 'Failed', ...obs.jobFailed, at: new Date(now).toISOString() }, now);
      changed = true;
    }
    if (refreshStatus(this.store, batchId, now).changed) changed = true;
    return changed;
  }

  private finish(batchId: string, first: number, last: number, from: 'pending' | 'running', to: 'succeeded' | 'failed', now: number): number {
    const errorSql = to === 'failed' ? ", failures = failures + 1, reason = 'BackoffLimitExceeded'" : ', error = NULL, reason = NULL';
    return this.store.sqlite
      .prepare(`UPDATE items SET status = ?, finished_at = ?${errorSql} WHERE batch_id = ? AND idx BETWEEN ? AND ? AND status = ?`)
      .run(to, now, batchId, first, last, from).changes;
  }

  /**
   * Why an index failed, from its last failed attempt: the rule that matched (FailItem) or the
   * per-index backoff limit. Kubernetes does not say which, but the rules are the same ones.
   */
  private explainFailures(batchId: string, failed: IndexRange[], policy: BatchHeader['retry']): void {
    const rows = this.store.sqlite.prepare(
      `SELECT idx FROM items WHERE batch_id = ? AND idx BETWEEN ? AND ? AND status = 'failed' AND error IS NULL`,
    ).pluck();
    for (const { first, last } of failed) {
      for (const index of rows.all(batchId, first, last) as number[]) {
        const lastAttempt = this.lastFailure.get(batchId, index) as { exitCode: number | null; condition: 'Disruption' | 'Timeout' | null; error: string | null } | undefined;
        const decision = lastAttempt
          ? decideFailedAttempt({ exitCode: lastAttempt.exitCode ?? undefined, condition: lastAttempt.condition ?? undefined }, { ...policy, backoffLimitPerItem: 0 }, 0)
          : undefined;
        const reason = decision && decision.kind !== 'retry' && decision.reason === 'FailItemRule' ? 'FailItemRule' : 'BackoffLimitExceeded';
        const message = lastAttempt?.error ?? (lastAttempt?.exitCode != null ? `last attempt exited with code ${lastAttempt.exitCode}` : 'the Job reported this index failed');
        this.store.sqlite.prepare('UPDATE items SET error = ?, reason = ? WHERE batch_id = ? AND idx = ?').run(message.slice(-MAX_ERROR), reason, batchId, index);
      }
    }
  }
}

/** Sets (or clears, with `null`) a runtime condition on a batch, kept beside the phase's own. */
export function setRuntimeCondition(
  store: StoreHandle,
  batchId: string,
  type: string,
  wanted: { reason: string; message: string } | null,
  recovered: { reason: string; message: string } = { reason: 'Recovered', message: 'the Kubernetes API server answers again' },
  now = Date.now(),
): boolean {
  return store.sqlite.transaction(() => {
    const row = getBatchById(store, batchId);
    if (!row) return false;
    const status = parseStatus(row);
    const existing = status.conditions.find((c) => c.type === type);
    if (wanted === null) {
      if (!existing || existing.status === 'False') return false;
      const next: Condition = { ...existing, status: 'False', ...recovered, lastTransitionTime: new Date(now).toISOString() };
      status.conditions = status.conditions.map((c) => (c.type === type ? next : c));
    } else {
      if (existing && existing.status === 'True' && existing.reason === wanted.reason && existing.message === wanted.message) return false;
      const time = existing && existing.status === 'True' ? existing.lastTransitionTime : new Date(now).toISOString();
      const next: Condition = { type, status: 'True', ...wanted, lastTransitionTime: time };
      status.conditions = existing ? status.conditions.map((c) => (c.type === type ? next : c)) : [...status.conditions, next];
    }
    store.db.update(batches).set({ status: JSON.stringify(status), updatedAt: now }).where(eq(batches.id, batchId)).run();
    return true;
  })();
}
