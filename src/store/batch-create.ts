import type { BatchHeader } from '../domain/batch-spec.js';
import type { BatchDecisions } from '../domain/batch-status.js';
import { dialect, get, run, type Op } from './op.js';
import type { NewItem } from './store.js';
import { compactId } from './ids.js';
import { UNLIMITED_QUOTAS, type Quotas } from '../domain/quotas.js';
import { admitSubmission } from './quotas.js';

export type { NewItem } from './store.js';

/**
 * Creating a batch. A 202 means stored: the batch, every item and the dispatch intent (an outbox
 * row) commit together. JSON bodies commit in one operation; NDJSON uploads append items in
 * chunks (Store.appendItems) to a batch that stays `uploading` (invisible to every query) until
 * one last operation makes it `active` and writes the outbox row, so a broken upload leaves nothing.
 * A batch's path from here to its webhook: docs/architecture.md#data-flow-of-a-batch.
 */

export interface IdempotencyRecord {
  key: string;
  requestHash: string;
}

/** A new batch id (src/store/ids.ts): sortable by age, valid in Kubernetes labels and BullMQ job ids. */
export function newBatchId(now = Date.now()): string {
  return compactId('b', now);
}

const EMPTY_DECISIONS: BatchDecisions = { halt: null, suspended: false };
const INITIAL_STATUS = JSON.stringify({ conditions: [], startTime: null, completionTime: null, completedIndexes: '', failedIndexes: '', indexesKey: '' });

/** Rows per multi-row INSERT on PostgreSQL (4 parameters a row, under its 65,535 limit). */
const PG_ROWS_PER_INSERT = 5000;

/** Inserts items numbered from `firstIndex`. */
export function* insertItems(batchId: string, firstIndex: number, rows: readonly NewItem[]): Op<void> {
  if ((yield* dialect()) === 'sqlite') {
    // One cached prepared statement per row: as fast as SQLite inserts get, without round trips.
    for (let k = 0; k < rows.length; k++) {
      yield* run("INSERT INTO items (batch_id, idx, custom_id, input, status) VALUES (?, ?, ?, ?, 'pending')", batchId, firstIndex + k, rows[k].customId, rows[k].input);
    }
    return;
  }
  // PostgreSQL: a round trip per statement, so many rows per statement, through unnest.
  for (let k = 0; k < rows.length; k += PG_ROWS_PER_INSERT) {
    const slice = rows.slice(k, k + PG_ROWS_PER_INSERT);
    yield* run(
      `INSERT INTO items (batch_id, idx, custom_id, input, status)
       SELECT ?, ?::bigint + o - 1, c, i, 'pending' FROM unnest(?::text[], ?::text[]) WITH ORDINALITY AS u(c, i, o)`,
      batchId,
      firstIndex + k,
      slice.map((r) => r.customId),
      slice.map((r) => r.input),
    );
  }
}

function* insertBatchRow(tenantId: string, id: string, header: BatchHeader, state: 'uploading' | 'active', total: number, now: number): Op<void> {
  yield* run(
    `INSERT INTO batches (id, tenant_id, name, labels, spec, task, parallelism, priority, state, phase, decisions, status, total, pending, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'Pending', ?, ?, ?, ?, ?, ?)`,
    id,
    tenantId,
    header.name ?? null,
    JSON.stringify(header.labels ?? {}),
    JSON.stringify(header),
    header.task ?? null,
    header.parallelism,
    header.priority ?? 0,
    state,
    JSON.stringify(EMPTY_DECISIONS),
    INITIAL_STATUS,
    total,
    total,
    now,
    now,
  );
  for (const [key, value] of Object.entries(header.labels ?? {})) {
    yield* run('INSERT INTO batch_labels (batch_id, key, value) VALUES (?, ?, ?)', id, key, value);
  }
}

/** The dispatch intent the dispatcher polls, written with the change that needs it. */
export function* writeOutbox(batchId: string, now: number): Op<void> {
  yield* run("INSERT INTO outbox (kind, batch_id, created_at) VALUES ('dispatch', ?, ?)", batchId, now);
}

function* writeActivation(tenantId: string, id: string, idem: IdempotencyRecord | undefined, now: number): Op<void> {
  yield* writeOutbox(id, now);
  if (idem) {
    yield* run('INSERT INTO idempotency_keys (tenant_id, key, request_hash, batch_id, created_at) VALUES (?, ?, ?, ?, ?)', tenantId, idem.key, idem.requestHash, id, now);
  }
}

/**
 * Stores a whole JSON batch in one operation; returns its id. Admitted against the tenant's
 * rate and storage quotas first (its overrides over `quotaDefaults`) (QuotaExceededError rolls it all back).
 */
export function* createBatch(tenantId: string, header: BatchHeader, rows: readonly NewItem[], idem?: IdempotencyRecord, now = Date.now(), quotaDefaults: Quotas = UNLIMITED_QUOTAS): Op<string> {
  yield* admitSubmission(tenantId, quotaDefaults, { batches: 1, items: rows.length, storedItems: rows.length }, now);
  const id = newBatchId(now);
  yield* insertBatchRow(tenantId, id, header, 'active', rows.length, now);
  yield* insertItems(id, 0, rows);
  yield* writeActivation(tenantId, id, idem, now);
  return id;
}

/** Starts an NDJSON upload: an invisible batch row that items can be attached to. */
export function* beginUpload(tenantId: string, header: BatchHeader, now = Date.now()): Op<string> {
  const id = newBatchId(now);
  yield* insertBatchRow(tenantId, id, header, 'uploading', 0, now);
  return id;
}

/**
 * Makes an uploaded batch visible and dispatchable, in one operation; admitted against the
 * tenant's quotas here, once its item count is known (QuotaExceededError rolls it back).
 */
export function* finishUpload(tenantId: string, id: string, total: number, idem?: IdempotencyRecord, now = Date.now(), quotaDefaults: Quotas = UNLIMITED_QUOTAS): Op<void> {
  yield* admitSubmission(tenantId, quotaDefaults, { batches: 1, items: total, storedItems: total }, now);
  yield* run("UPDATE batches SET state = 'active', total = ?, pending = ?, updated_at = ? WHERE id = ? AND state = 'uploading'", total, total, now, id);
  yield* writeActivation(tenantId, id, idem, now);
}

/** Removes an upload that failed (its items go with it through the cascade). */
export function* abortUpload(id: string): Op<void> {
  yield* run("DELETE FROM batches WHERE id = ? AND state = 'uploading'", id);
}

/** Uploads left behind by a crash: removed at start-up. */
export function sweepAbandonedUploads(): Op<number> {
  return run("DELETE FROM batches WHERE state = 'uploading'");
}

/** The batch an Idempotency-Key already created, with the hash of the request that created it. */
export function findIdempotentBatch(tenantId: string, key: string): Op<{ batchId: string; requestHash: string } | undefined> {
  return get('SELECT batch_id AS "batchId", request_hash AS "requestHash" FROM idempotency_keys WHERE tenant_id = ? AND key = ?', tenantId, key);
}
