import { checkTransition, type Phase } from '../domain/batch-status.js';
import { run, type Op } from './op.js';
import { getBatch, type BatchRow } from './batch-queries.js';
import { haltBatch, lockBatch, parseDecisions, refreshStatus, writeDecisions } from './batch-state.js';
import { writeOutbox } from './batch-create.js';

/**
 * What a client can ask of a batch. Each is one operation: check the transition against the
 * state machine (a TransitionError becomes 409), record the decision, re-derive the phase and
 * write the dispatch intent so the dispatcher converges Redis and workers on it.
 * The transitions these make: docs/architecture.md#batch-state-machine.
 */
export type BatchAction = 'cancel' | 'suspend' | 'resume' | 'retry';

export class NotFoundError extends Error {}

export function* applyBatchAction(tenantId: string, id: string, action: BatchAction, now = Date.now()): Op<BatchRow> {
  const row = yield* lockBatch(id);
  if (!row || row.tenantId !== tenantId) throw new NotFoundError(`batch ${id} not found`);
  checkTransition(action, row.phase as Phase, row.failed);
  const decisions = parseDecisions(row);
  const at = new Date(now).toISOString();
  switch (action) {
    case 'cancel':
      yield* haltBatch(row, { phase: 'Cancelled', reason: 'CancelRequested', message: 'cancelled by a client request', at }, now);
      break;
    case 'suspend':
      yield* writeDecisions(id, { ...decisions, suspended: true }, now);
      break;
    case 'resume':
      yield* writeDecisions(id, { ...decisions, suspended: false }, now);
      break;
    case 'retry':
      yield* retryFailedItems(id, now);
      yield* writeDecisions(id, { halt: null, suspended: false }, now);
      yield* run("UPDATE batches SET state = 'active' WHERE id = ? AND state = 'final'", id);
      break;
  }
  yield* refreshStatus(id, now);
  yield* writeOutbox(id, now);
  return (yield* getBatch(tenantId, id))!;
}

/**
 * `retry` re-runs failed items with a fresh backoff budget, and the items that were cancelled
 * only because a rule, a limit or the deadline failed the batch (a client's cancel cannot be
 * retried: checkTransition refuses it). Succeeded items are never run again.
 */
function* retryFailedItems(id: string, now: number): Op<void> {
  yield* run(`UPDATE items SET status = 'pending', failures = 0, not_before = ?, reason = NULL WHERE batch_id = ? AND status IN ('failed', 'cancelled')`, now, id);
  yield* run('UPDATE batches SET pending = pending + failed + cancelled, failed = 0, cancelled = 0 WHERE id = ?', id);
}
