import { and, desc, eq, inArray, lt, ne, sql, type SQL } from 'drizzle-orm';
import type { AnySQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { LabelRequirement } from '../domain/label-selector.js';
import type { StoreHandle } from './db.js';
import { batches, batchLabels, leases } from './schema.js';

export type BatchRow = typeof batches.$inferSelect;

/** A visible batch of this tenant (uploads in progress are invisible), or undefined. */
export function getBatch(store: StoreHandle, tenantId: string, id: string): BatchRow | undefined {
  return store.db
    .select()
    .from(batches)
    .where(and(eq(batches.id, id), eq(batches.tenantId, tenantId), ne(batches.state, 'uploading')))
    .get();
}

/** Any visible batch by id, for the dispatcher (which serves every tenant). */
export function getBatchById(store: StoreHandle, id: string): BatchRow | undefined {
  return store.db.select().from(batches).where(and(eq(batches.id, id), ne(batches.state, 'uploading'))).get();
}

/** A row-per-label table and the columns that tie it to its owner (batches, schedules). */
export interface LabelTable {
  table: SQLiteTable;
  ownerId: AnySQLiteColumn;
  key: AnySQLiteColumn;
  value: AnySQLiteColumn;
  /** the owner's id column in the outer query */
  id: AnySQLiteColumn;
}

const BATCH_LABELS: LabelTable = { table: batchLabels, ownerId: batchLabels.batchId, key: batchLabels.key, value: batchLabels.value, id: batches.id };

/** Translates label requirements into EXISTS clauses over a label table (batch_labels by default). */
export function selectorSql(reqs: LabelRequirement[], t: LabelTable = BATCH_LABELS): SQL[] {
  return reqs.map((r) => {
    const has = (values?: string[]) =>
      values
        ? sql`EXISTS (SELECT 1 FROM ${t.table} WHERE ${t.ownerId} = ${t.id} AND ${t.key} = ${r.key} AND ${inArray(t.value, values)})`
        : sql`EXISTS (SELECT 1 FROM ${t.table} WHERE ${t.ownerId} = ${t.id} AND ${t.key} = ${r.key})`;
    switch (r.operator) {
      case 'In':
        return has(r.values);
      case 'NotIn':
        // Kubernetes: `notin` and `!=` also match objects without the key.
        return sql`NOT ${has(r.values)}`;
      case 'Exists':
        return has();
      case 'DoesNotExist':
        return sql`NOT ${has()}`;
    }
  });
}

export interface ListQuery {
  selector: LabelRequirement[];
  phase?: string;
  limit: number;
  /** id of the last batch of the previous page (newest first) */
  after?: string;
}

/** Batches newest first, filtered in SQL; returns one page and whether more follow. */
export function listBatches(store: StoreHandle, tenantId: string, q: ListQuery): { rows: BatchRow[]; more: boolean } {
  const where = [eq(batches.tenantId, tenantId), ne(batches.state, 'uploading'), ...selectorSql(q.selector)];
  if (q.phase) where.push(eq(batches.phase, q.phase));
  if (q.after) where.push(lt(batches.id, q.after));
  const rows = store.db.select().from(batches).where(and(...where)).orderBy(desc(batches.id)).limit(q.limit + 1).all();
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
}

/** Ids of this tenant's batches matching a selector (for group delete). */
export function selectBatchIds(store: StoreHandle, tenantId: string, selector: LabelRequirement[]): string[] {
  return store.db
    .select({ id: batches.id })
    .from(batches)
    .where(and(eq(batches.tenantId, tenantId), ne(batches.state, 'uploading'), ...selectorSql(selector)))
    .all()
    .map((r) => r.id);
}

/**
 * Deletes batches with their items, attempts and leases (ON DELETE CASCADE) in one transaction.
 * Returns the deleted ids with the lease ids they still had in Redis, for cleanup there.
 */
export function deleteBatches(store: StoreHandle, tenantId: string, ids: string[]): { id: string; task: string | null; leaseIds: string[] }[] {
  if (ids.length === 0) return [];
  return store.sqlite.transaction(() => {
    const owned = store.db
      .select({ id: batches.id, task: batches.task })
      .from(batches)
      .where(and(eq(batches.tenantId, tenantId), inArray(batches.id, ids)))
      .all();
    const result = owned.map((b) => ({
      ...b,
      leaseIds: store.db.select({ id: leases.id }).from(leases).where(eq(leases.batchId, b.id)).all().map((l) => l.id),
    }));
    if (owned.length > 0) store.db.delete(batches).where(inArray(batches.id, owned.map((b) => b.id))).run();
    return result;
  })();
}

/** Batches the dispatcher must keep reconciling. */
export function activeBatchIds(store: StoreHandle): string[] {
  return store.db.select({ id: batches.id }).from(batches).where(eq(batches.state, 'active')).all().map((r) => r.id);
}

/** Count of visible batches per phase, for /metrics. */
export function countBatchesByPhase(store: StoreHandle): { phase: string; n: number }[] {
  return store.db
    .select({ phase: batches.phase, n: sql<number>`count(*)` })
    .from(batches)
    .where(ne(batches.state, 'uploading'))
    .groupBy(batches.phase)
    .all();
}
