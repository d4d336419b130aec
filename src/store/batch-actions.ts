import { checkTransition, type Phase } from '../domain/batch-status.js';
import type { StoreHandle } from './db.js';
import { getBatch, type BatchRow } from './batch-queries.js';
import { haltBatch, parseDecisions, refreshStatus, writeDecisions } from './batch-state.js';
import { outbox } from './schema.js';

/**
 * What a client can ask of a batch. Each is one transaction: check the transition against the
 * state machine (a TransitionError becomes 409), record the decision, re-derive the phase and
 * write the dispatch intent so the dispatcher converges Redis and workers on it.
 * The transitions these make: docs/architecture.md#batch-state-machine.
 */
export type BatchAction = 'cancel' | 'suspend' | 'resume' | 'retry';

export class NotFoundError extends Error {}

export function applyBatchAction(store: StoreHandle, tenantId: string, id: string, action: BatchAction, now = Date.now()): BatchRow {
  return store.sqlite.transaction(() => {
    const row = getBatch(store, tenantId, id);
    if (!row) throw new NotFoundError(`batch ${id} not found`);
    checkTransition(action, row.phase as Phase, row.failed);
    const decisions = parseDecisions(row);
    const at = new Date(now).toISOString();
    switch (action) {
      case 'cancel':
        haltBatch(store, row, { phase: 'Cancelled', reason: 'CancelRequested', message: 'cancelled by a client request', at }, now);
        break;
      case 'suspend':
        writeDecisions(store, id, { ...decisions, suspended: true }, now);
        break;
      case 'resume':
        writeDecisions(store, id, { ...decisions, suspended: false }, now);
        break;
      case 'retry':
        retryFailedItems(store, id, now);
        writeDecisions(store, id, { halt: null, suspended: false }, now);
        break;
    }
    store.sqlite.prepare("UPDATE batches SET state = 'active' WHERE id = ? AND state = 'final' AND ? = 'retry'").run(id, action);
    refreshStatus(store, id, now);
    store.db.insert(outbox).values({ kind: 'dispatch', batchId: id, createdAt: now }).run();
    return getBatch(store, tenantId, id)!;
  })();
}

/**
 * `retry` re-runs failed items with a fresh backoff budget, and the items that were cancelled
 * only because a rule, a limit or the deadline failed the batch (a client's cancel cannot be
 * retried: checkTransition refuses it). Succeeded items are never run again.
 */
function retryFailedItems(store: StoreHandle, id: string, now: number): void {
  store.sqlite
    .prepare(`UPDATE items SET status = 'pending', failures = 0, not_before = ?, reason = NULL WHERE batch_id = ? AND status IN ('failed', 'cancelled')`)
    .run(now, id);
  store.sqlite.prepare('UPDATE batches SET pending = pending + failed + cancelled, failed = 0, cancelled = 0 WHERE id = ?').run(id);
}
