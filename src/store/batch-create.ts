import { randomBytes } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { BatchHeader } from '../domain/batch-spec.js';
import type { BatchDecisions } from '../domain/batch-status.js';
import type { StoreHandle } from './db.js';
import { batches, batchLabels, idempotencyKeys, outbox } from './schema.js';

/**
 * Creating a batch. A 202 means stored: the batch, every item and the dispatch intent (an outbox
 * row) commit together. JSON bodies commit in one transaction; NDJSON uploads insert items in
 * chunks into a batch that stays `uploading` (invisible to every query) until one last
 * transaction makes it `active` and writes the outbox row, so a broken upload leaves nothing.
 * A batch's path from here to its webhook: docs/architecture.md#data-flow-of-a-batch.
 */

/** One row to insert: the item's JSON text and its optional customId. */
export interface NewItem {
  input: string;
  customId: string | null;
}

export interface IdempotencyRecord {
  key: string;
  requestHash: string;
}

let lastMs = 0;
let sequence = 0;

/**
 * Sortable ids: creation time, then a per-process sequence within the same millisecond, then
 * randomness. Cursor pagination by id is therefore pagination by age, even for batches created
 * in one millisecond. 20 characters of [0-9a-z]: valid in Kubernetes labels and BullMQ job ids.
 */
export function newBatchId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    sequence = 0;
  } else {
    sequence++;
  }
  const time = lastMs.toString(36).padStart(9, '0');
  const seq = sequence.toString(36).padStart(3, '0');
  return `b${time}${seq}${randomBytes(4).toString('hex').slice(0, 7)}`;
}

const EMPTY_DECISIONS: BatchDecisions = { halt: null, suspended: false };
const INITIAL_STATUS = JSON.stringify({ conditions: [], startTime: null, completionTime: null, completedIndexes: '', failedIndexes: '', indexesKey: '' });

/** Prepared statements for the ingest path: drizzle's builder costs too much per row here. */
export class ItemWriter {
  private readonly insert;
  constructor(private readonly store: StoreHandle) {
    this.insert = store.sqlite.prepare(
      "INSERT INTO items (batch_id, idx, custom_id, input, status) VALUES (?, ?, ?, ?, 'pending')",
    );
  }

  /** Inserts rows numbered from `firstIndex`; call inside a transaction. */
  writeRows(batchId: string, firstIndex: number, rows: NewItem[]): void {
    for (let k = 0; k < rows.length; k++) this.insert.run(batchId, firstIndex + k, rows[k].customId, rows[k].input);
  }

  /** Inserts rows in their own transaction (NDJSON chunks). */
  writeChunk(batchId: string, firstIndex: number, rows: NewItem[]): void {
    this.store.sqlite.transaction(() => this.writeRows(batchId, firstIndex, rows))();
  }
}

function insertBatchRow(store: StoreHandle, tenantId: string, id: string, header: BatchHeader, state: 'uploading' | 'active', total: number, now: number) {
  store.db
    .insert(batches)
    .values({
      id,
      tenantId,
      name: header.name ?? null,
      labels: JSON.stringify(header.labels ?? {}),
      spec: JSON.stringify(header),
      task: header.task ?? null,
      parallelism: header.parallelism,
      state,
      phase: 'Pending',
      decisions: JSON.stringify(EMPTY_DECISIONS),
      status: INITIAL_STATUS,
      total,
      pending: total,
      createdAt: now,
      updatedAt: now,
    })
    .run();
  const labels = Object.entries(header.labels ?? {});
  if (labels.length > 0) store.db.insert(batchLabels).values(labels.map(([key, value]) => ({ batchId: id, key, value }))).run();
}

function writeActivation(store: StoreHandle, tenantId: string, id: string, idem: IdempotencyRecord | undefined, now: number) {
  store.db.insert(outbox).values({ kind: 'dispatch', batchId: id, createdAt: now }).run();
  if (idem) store.db.insert(idempotencyKeys).values({ tenantId, key: idem.key, requestHash: idem.requestHash, batchId: id, createdAt: now }).run();
}

/** Stores a whole JSON batch in one transaction; returns its id. */
export function createBatch(store: StoreHandle, tenantId: string, header: BatchHeader, rows: NewItem[], idem?: IdempotencyRecord, now = Date.now()): string {
  const id = newBatchId(now);
  const writer = new ItemWriter(store);
  store.sqlite.transaction(() => {
    insertBatchRow(store, tenantId, id, header, 'active', rows.length, now);
    writer.writeRows(id, 0, rows);
    writeActivation(store, tenantId, id, idem, now);
  })();
  return id;
}

/** Starts an NDJSON upload: an invisible batch row that items can be attached to. */
export function beginUpload(store: StoreHandle, tenantId: string, header: BatchHeader, now = Date.now()): string {
  const id = newBatchId(now);
  store.sqlite.transaction(() => insertBatchRow(store, tenantId, id, header, 'uploading', 0, now))();
  return id;
}

/** Makes an uploaded batch visible and dispatchable, in one transaction. */
export function finishUpload(store: StoreHandle, tenantId: string, id: string, total: number, idem?: IdempotencyRecord, now = Date.now()): void {
  store.sqlite.transaction(() => {
    store.db
      .update(batches)
      .set({ state: 'active', total, pending: total, updatedAt: now })
      .where(and(eq(batches.id, id), eq(batches.state, 'uploading')))
      .run();
    writeActivation(store, tenantId, id, idem, now);
  })();
}

/** Removes an upload that failed (its items go with it through the cascade). */
export function abortUpload(store: StoreHandle, id: string): void {
  store.db.delete(batches).where(and(eq(batches.id, id), eq(batches.state, 'uploading'))).run();
}

/** Uploads left behind by a crash: removed at start-up. */
export function sweepAbandonedUploads(store: StoreHandle): number {
  return store.db.delete(batches).where(eq(batches.state, 'uploading')).run().changes;
}

/** The batch an Idempotency-Key already created, with the hash of the request that created it. */
export function findIdempotentBatch(store: StoreHandle, tenantId: string, key: string): { batchId: string; requestHash: string } | undefined {
  return store.db
    .select({ batchId: idempotencyKeys.batchId, requestHash: idempotencyKeys.requestHash })
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, key)))
    .get();
}
