import { checkTransition, TransitionError, type Phase } from '../domain/batch-status.js';
import { run, type Op } from './op.js';
import { getBatch, type BatchRow } from './batch-queries.js';
import { haltBatch, lockBatch, parseDecisions, refreshStatus, writeDecisions } from './batch-state.js';
import { writeOutbox } from './batch-create.js';
import { startSweep } from './sweeps.js';

/**
 * What a client can ask of a batch. Each is one operation: check the transition against the
 * state machine (a TransitionError becomes 409), record the decision, re-derive the phase and
 * write the dispatch intent so the dispatcher converges Redis and workers on it.
 * The transitions these make: docs/architecture.md#batch-state-machine.
 */
export type BatchAction = 'cancel' | 'suspend' | 'resume' | 'retry';

export class NotFoundError extends Error {}

export function* applyBatchAction(tenantId: string, id: string, action: BatchAction, now = Date.now(), chunkItems?: number): Op<BatchRow> {
  const row = yield* lockBatch(id);
  if (!row || row.tenantId !== tenantId) throw new NotFoundError(`batch ${id} not found`);
  checkTransition(action, row.phase as Phase, row.failed);
  if (action === 'retry' && row.sweep !== null) {
    // Its open items are still being cancelled in chunks: a retry now would find them half done.
    throw new TransitionError(action, row.phase as Phase, `cannot retry batch ${id} while its items are still being cancelled; try again once its counts stop moving`);
  }
  const decisions = parseDecisions(row);
  const at = new Date(now).toISOString();
  switch (action) {
    case 'cancel':
      yield* haltBatch(row, { phase: 'Cancelled', reason: 'CancelRequested', message: 'cancelled by a client request', at }, now, chunkItems);
      break;
    case 'suspend':
      yield* writeDecisions(id, { ...decisions, suspended: true }, now);
      break;
    case 'resume':
      yield* writeDecisions(id, { ...decisions, suspended: false }, now);
      break;
    case 'retry':
      yield* writeDecisions(id, { halt: null, suspended: false }, now);
      yield* run("UPDATE batches SET state = 'active' WHERE id = ? AND state = 'final'", id);
      yield* retryFailedItems(id, now, chunkItems);
      break;
  }
  yield* refreshStatus(id, now);
  yield* writeOutbox(id, now);
  return (yield* getBatch(tenantId, id))!;
}

/**
 * `retry` re-runs failed items with a fresh backoff budget, and the items that were cancelled
 * only because a rule, a limit or the deadline failed the batch (a client's cancel cannot be
 * retried: checkTransition refuses it). Succeeded items are never run again. In chunks
 * (src/store/sweeps.ts): the batch stays open until the last failed item is back.
 */
function* retryFailedItems(id: string, now: number, chunkItems?: number): Op<void> {
  yield* startSweep(id, 'retry', now, chunkItems);
}
