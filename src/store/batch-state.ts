import { eq } from 'drizzle-orm';
import { deriveStatus, isFinalPhase, statusChanged, type BatchDecisions, type Condition, type Phase } from '../domain/batch-status.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import type { StoreHandle } from './db.js';
import type { BatchRow } from './batch-queries.js';
import { batches } from './schema.js';
import { recordBatchFinished } from './webhook-events.js';

/**
 * Helpers used inside the transactions that change a batch: counters move with the items they
 * count (same transaction), and the phase is re-derived from decisions + counters afterwards.
 * The batch state machine: docs/architecture.md#batch-state-machine.
 */

export interface StoredStatus {
  conditions: Condition[];
  startTime: string | null;
  completionTime: string | null;
  completedIndexes: string;
  failedIndexes: string;
  /** `succeeded,failed,cancelled` counts when the index sets were computed ('' = never) */
  indexesKey: string;
  indexesComputedAt?: number;
}

export function parseStatus(row: BatchRow): StoredStatus {
  return JSON.parse(row.status) as StoredStatus;
}

export function parseDecisions(row: BatchRow): BatchDecisions {
  return JSON.parse(row.decisions) as BatchDecisions;
}

export function parseHeader(row: BatchRow): BatchHeader {
  return JSON.parse(row.spec) as BatchHeader;
}

export type CounterName = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type CounterDelta = Partial<Record<CounterName, number>>;

/** Moves item counters by `delta` (call in the transaction that moved the items). */
export function bumpCounters(store: StoreHandle, batchId: string, delta: CounterDelta): void {
  const names = Object.keys(delta).filter((k) => delta[k as CounterName]) as CounterName[];
  if (names.length === 0) return;
  const set = names.map((n) => `${n} = ${n} + ?`).join(', ');
  store.sqlite.prepare(`UPDATE batches SET ${set} WHERE id = ?`).run(...names.map((n) => delta[n]), batchId);
}

/**
 * Re-derives phase and conditions from the stored decisions and counters and writes them only
 * when they changed. Returns the phase. Call inside a transaction.
 */
export function refreshStatus(store: StoreHandle, batchId: string, now: number): { phase: Phase; changed: boolean } {
  const row = store.db.select().from(batches).where(eq(batches.id, batchId)).get();
  if (!row) return { phase: 'Cancelled', changed: false };
  const stored = parseStatus(row);
  const previous = { phase: row.phase as Phase, conditions: stored.conditions, startTime: stored.startTime, completionTime: stored.completionTime };
  const next = deriveStatus({
    decisions: parseDecisions(row),
    counts: { total: row.total, pending: row.pending, running: row.running, succeeded: row.succeeded, failed: row.failed, cancelled: row.cancelled },
    previous,
    now: new Date(now).toISOString(),
  });
  if (!statusChanged(previous, next)) return { phase: next.phase, changed: false };
  const status: StoredStatus = { ...stored, conditions: next.conditions, startTime: next.startTime, completionTime: next.completionTime };
  store.db
    .update(batches)
    .set({ phase: next.phase, status: JSON.stringify(status), state: isFinalPhase(next.phase) ? 'final' : 'active', updatedAt: now })
    .where(eq(batches.id, batchId))
    .run();
  // The webhook event commits with the final transition it reports (at least once, never lost).
  if (isFinalPhase(next.phase) && !isFinalPhase(previous.phase)) {
    recordBatchFinished(store, {
      id: row.id,
      tenantId: row.tenantId,
      spec: row.spec,
      phase: next.phase,
      counts: { total: row.total, pending: row.pending, running: row.running, succeeded: row.succeeded, failed: row.failed, cancelled: row.cancelled },
      startTime: next.startTime,
      completionTime: next.completionTime,
    }, now);
  }
  return { phase: next.phase, changed: true };
}

/** Writes new decisions for a batch (a halt, a suspend flag). */
export function writeDecisions(store: StoreHandle, batchId: string, decisions: BatchDecisions, now: number): void {
  store.db.update(batches).set({ decisions: JSON.stringify(decisions), updatedAt: now }).where(eq(batches.id, batchId)).run();
}

/**
 * Ends every not-yet-final item of a batch as cancelled and forgets its leases: what a cancel,
 * a FailBatch rule, maxFailedItems or a deadline does to the rest of the batch.
 */
export function cancelOpenItems(store: StoreHandle, batchId: string, now: number): void {
  const moved = store.sqlite
    .prepare(
      `UPDATE items SET status = 'cancelled', lease_id = NULL, finished_at = ?
        WHERE batch_id = ? AND status IN ('pending', 'running')`,
    )
    .run(now, batchId).changes;
  if (moved > 0) {
    store.sqlite
      .prepare('UPDATE batches SET cancelled = cancelled + pending + running, pending = 0, running = 0 WHERE id = ?')
      .run(batchId);
  }
  store.sqlite.prepare('DELETE FROM leases WHERE batch_id = ?').run(batchId);
}

/** Records a halt decision (Failed or Cancelled) and cancels what is still open. */
export function haltBatch(store: StoreHandle, row: BatchRow, halt: NonNullable<BatchDecisions['halt']>, now: number): void {
  const decisions = parseDecisions(row);
  if (decisions.halt) return;
  writeDecisions(store, row.id, { ...decisions, halt }, now);
  cancelOpenItems(store, row.id, now);
}
