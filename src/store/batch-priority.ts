import { run, type Op } from './op.js';
import { getBatch, type BatchRow } from './batch-queries.js';
import { lockBatch, parseHeader } from './batch-state.js';
import { writeOutbox } from './batch-create.js';
import { NotFoundError } from './batch-actions.js';

/**
 * PATCH /v1/batches/{id}: a new priority for one of the tenant's batches, in any phase (a retried
 * batch runs with it). The column is what the dispatcher orders by; the stored spec keeps the
 * same value so the batch view never shows two. The dispatch intent wakes the dispatcher, whose
 * next release of the tenant's batches follows the new order (leases already in Redis keep
 * their place).
 */
export function* setBatchPriority(tenantId: string, id: string, priority: number, now = Date.now()): Op<BatchRow> {
  const row = yield* lockBatch(id);
  if (!row || row.tenantId !== tenantId) throw new NotFoundError(`batch ${id} not found`);
  const spec = { ...parseHeader(row), priority };
  yield* run('UPDATE batches SET priority = ?, spec = ?, updated_at = ? WHERE id = ?', priority, JSON.stringify(spec), now, id);
  yield* writeOutbox(id, now);
  return (yield* getBatch(tenantId, id))!;
}
