import { deriveStatus, isFinalPhase, statusChanged, type BatchDecisions, type Condition, type Phase } from '../domain/batch-status.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import { get, run, type Op } from './op.js';
import { BATCH_COLUMNS, type BatchRow } from './columns.js';
import { recordBatchFinished } from './webhook-events.js';
import { indexSets } from './item-queries.js';
import { getBatchById } from './batch-queries.js';
import { startSweep } from './sweeps.js';

/**
 * Helpers used inside the operations that change a batch: counters move with the items they
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

/**
 * The batch row, locked until the operation commits (PostgreSQL: FOR UPDATE; SQLite's write
 * transaction holds the whole file already). Every read-modify-write of a batch's decisions or
 * status reads it this way, so two writers never both act on the same old row.
 */
export function lockBatch(id: string): Op<BatchRow | undefined> {
  const text = `SELECT ${BATCH_COLUMNS} FROM batches WHERE id = ? AND state IN ('active', 'final')`;
  return get<BatchRow>({ sqlite: text, postgres: `${text} FOR UPDATE` }, id);
}

export type CounterName = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type CounterDelta = Partial<Record<CounterName, number>>;

/** Moves item counters by `delta` (in the operation that moved the items). */
export function* bumpCounters(batchId: string, delta: CounterDelta): Op<void> {
  const names = Object.keys(delta).filter((k) => delta[k as CounterName]) as CounterName[];
  if (names.length === 0) return;
  const set = names.map((n) => `${n} = ${n} + ?`).join(', ');
  yield* run(`UPDATE batches SET ${set} WHERE id = ?`, ...names.map((n) => delta[n]), batchId);
}

/**
 * Re-derives phase and conditions from the stored decisions and counters and writes them only
 * when they changed. Returns the phase.
 */
export function* refreshStatus(batchId: string, now: number): Op<{ phase: Phase; changed: boolean }> {
  // Looked at unlocked first: usually nothing changes, and then no lock is waited for (the
  // dispatcher refreshes after every reconcile while reports of the batch are being written).
  // What this operation itself changed is visible to it either way.
  const seen = yield* getBatchById(batchId);
  if (!seen) return { phase: 'Cancelled', changed: false };
  if (!derive(seen, now).changed) return { phase: seen.phase as Phase, changed: false };
  const row = yield* lockBatch(batchId);
  if (!row) return { phase: 'Cancelled', changed: false };
  const { stored, previous, next, changed } = derive(row, now);
  if (!changed) return { phase: next.phase, changed: false };
  const final = isFinalPhase(next.phase);
  // A retry still putting failed items back in chunks: the batch stays open until all are back
  // (the items put back so far may all have finished already).
  if (final && row.sweep === 'retry') return { phase: row.phase as Phase, changed: false };
  const status: StoredStatus = { ...stored, conditions: next.conditions, startTime: next.startTime, completionTime: next.completionTime };
  yield* run(
    'UPDATE batches SET phase = ?, status = ?, state = ?, updated_at = ? WHERE id = ?',
    next.phase,
    JSON.stringify(status),
    final ? 'final' : 'active',
    now,
    batchId,
  );
  // While its open items are still being cancelled in chunks, a halted batch is final (nothing
  // runs any more) but its counts still move: its index sets and webhook event wait for the
  // last chunk, which settles it (src/store/sweeps.ts).
  if (final && row.sweep === null) yield* settleFinal(batchId, !isFinalPhase(previous.phase), now);
  return { phase: next.phase, changed: true };
}

/**
 * A final batch whose counts no longer move: its index sets are computed once here (for reads
 * and the webhook event), and when it has just become final, its webhook event commits with the
 * transition it reports (at least once, never lost).
 */
export function* settleFinal(batchId: string, announce: boolean, now: number): Op<void> {
  const row = yield* lockBatch(batchId);
  if (!row || !isFinalPhase(row.phase as Phase)) return;
  const status = parseStatus(row);
  Object.assign(status, yield* indexSets(batchId, row), { indexesKey: `${row.succeeded},${row.failed},${row.cancelled}`, indexesComputedAt: now });
  yield* run('UPDATE batches SET status = ? WHERE id = ?', JSON.stringify(status), batchId);
  if (!announce) return;
  const counts = { total: row.total, pending: row.pending, running: row.running, succeeded: row.succeeded, failed: row.failed, cancelled: row.cancelled };
  yield* recordBatchFinished(
    {
      id: row.id,
      tenantId: row.tenantId,
      spec: row.spec,
      phase: row.phase as Phase,
      counts,
      completedIndexes: status.completedIndexes,
      failedIndexes: status.failedIndexes,
      startTime: status.startTime,
      completionTime: status.completionTime,
    },
    now,
  );
}

/** The status a batch row's decisions and counters call for, beside the one it has. */
function derive(row: BatchRow, now: number) {
  const stored = parseStatus(row);
  const previous = { phase: row.phase as Phase, conditions: stored.conditions, startTime: stored.startTime, completionTime: stored.completionTime };
  const counts = { total: row.total, pending: row.pending, running: row.running, succeeded: row.succeeded, failed: row.failed, cancelled: row.cancelled };
  const next = deriveStatus({ decisions: parseDecisions(row), counts, previous, now: new Date(now).toISOString() });
  return { stored, previous, counts, next, changed: statusChanged(previous, next) };
}

/** Writes new decisions for a batch (a halt, a suspend flag). */
export function* writeDecisions(batchId: string, decisions: BatchDecisions, now: number): Op<void> {
  yield* run('UPDATE batches SET decisions = ?, updated_at = ? WHERE id = ?', JSON.stringify(decisions), now, batchId);
}

/**
 * Ends every not-yet-final item of a batch as cancelled and forgets its leases: what a cancel,
 * a FailBatch rule, maxFailedItems or a deadline does to the rest of the batch. The items are
 * cancelled in bounded chunks (src/store/sweeps.ts): the first one here, the rest, for a batch
 * larger than a chunk, by the dispatcher's sweeper in transactions of their own.
 */
export function* cancelOpenItems(batchId: string, now: number, chunkItems?: number): Op<void> {
  yield* run('DELETE FROM leases WHERE batch_id = ?', batchId);
  yield* startSweep(batchId, 'cancel', now, chunkItems);
}

/** Records a halt decision (Failed or Cancelled) and cancels what is still open. */
export function* haltBatch(row: BatchRow, halt: NonNullable<BatchDecisions['halt']>, now: number, chunkItems?: number): Op<void> {
  const decisions = parseDecisions(row);
  if (decisions.halt) return;
  yield* writeDecisions(row.id, { ...decisions, halt }, now);
  yield* cancelOpenItems(row.id, now, chunkItems);
}

/**
 * Fails an active batch for a reason found outside any report (its deadline passed, Kubernetes
 * refused an object, its workers failed): open items cancelled, the phase re-derived. Nothing
 * when it is no longer active or already halted. Returns whether it halted the batch.
 */
export function* failBatch(batchId: string, reason: string, message: string, now: number): Op<boolean> {
  const row = yield* lockBatch(batchId);
  if (!row || row.state !== 'active' || parseDecisions(row).halt) return false;
  yield* haltBatch(row, { phase: 'Failed', reason, message, at: new Date(now).toISOString() }, now);
  yield* refreshStatus(batchId, now);
  return true;
}
