import type { LabelRequirement } from '../domain/label-selector.js';
import { all, get, pluck, run, type Op } from './op.js';
import { BATCH_COLUMNS, placeholders, type BatchRow } from './columns.js';
import { DEFAULT_SWEEP_CHUNK_ITEMS } from './sweeps.js';

export type { BatchRow } from './columns.js';

/** A visible batch of this tenant (uploads in progress and deleted batches being removed are invisible), or undefined. */
export function getBatch(tenantId: string, id: string): Op<BatchRow | undefined> {
  return get<BatchRow>(`SELECT ${BATCH_COLUMNS} FROM batches WHERE id = ? AND tenant_id = ? AND state IN ('active', 'final')`, id, tenantId);
}

/** Any visible batch by id, for the dispatcher (which serves every tenant). */
export function getBatchById(id: string): Op<BatchRow | undefined> {
  return get<BatchRow>(`SELECT ${BATCH_COLUMNS} FROM batches WHERE id = ? AND state IN ('active', 'final')`, id);
}

/** A row-per-label table and the columns that tie it to its owner (batches, schedules). */
export interface LabelTable {
  table: string;
  ownerId: string;
  /** the owner's id column in the outer query */
  id: string;
}

const BATCH_LABELS: LabelTable = { table: 'batch_labels', ownerId: 'batch_id', id: 'batches.id' };

/** A WHERE fragment with its parameters. */
export interface Clause {
  text: string;
  params: unknown[];
}

/** Translates label requirements into EXISTS clauses over a label table (batch_labels by default). */
export function selectorSql(reqs: LabelRequirement[], t: LabelTable = BATCH_LABELS): Clause[] {
  return reqs.map((r) => {
    const has = (values?: string[]): Clause =>
      values
        ? { text: `EXISTS (SELECT 1 FROM ${t.table} l WHERE l.${t.ownerId} = ${t.id} AND l.key = ? AND l.value IN (${placeholders(values.length)}))`, params: [r.key, ...values] }
        : { text: `EXISTS (SELECT 1 FROM ${t.table} l WHERE l.${t.ownerId} = ${t.id} AND l.key = ?)`, params: [r.key] };
    const not = (c: Clause): Clause => ({ text: `NOT ${c.text}`, params: c.params });
    switch (r.operator) {
      case 'In':
        return has(r.values);
      case 'NotIn':
        // Kubernetes: `notin` and `!=` also match objects without the key.
        return not(has(r.values));
      case 'Exists':
        return has();
      case 'DoesNotExist':
        return not(has());
    }
  });
}

/** Joins clauses with AND (at least one clause). */
export function andClauses(clauses: Clause[]): Clause {
  return { text: clauses.map((c) => c.text).join(' AND '), params: clauses.flatMap((c) => c.params) };
}

export interface ListQuery {
  selector: LabelRequirement[];
  phase?: string;
  limit: number;
  /** id of the last batch of the previous page (newest first) */
  after?: string;
}

/** Batches newest first, filtered in SQL; returns one page and whether more follow. */
export function* listBatches(tenantId: string, q: ListQuery): Op<{ rows: BatchRow[]; more: boolean }> {
  const clauses: Clause[] = [{ text: "tenant_id = ? AND state IN ('active', 'final')", params: [tenantId] }, ...selectorSql(q.selector)];
  if (q.phase) clauses.push({ text: 'phase = ?', params: [q.phase] });
  if (q.after) clauses.push({ text: 'id < ?', params: [q.after] });
  const where = andClauses(clauses);
  const rows = yield* all<BatchRow>(`SELECT ${BATCH_COLUMNS} FROM batches WHERE ${where.text} ORDER BY id DESC LIMIT ?`, ...where.params, q.limit + 1);
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
}

/** Ids of this tenant's batches matching a selector (for group delete). */
export function selectBatchIds(tenantId: string, selector: LabelRequirement[]): Op<string[]> {
  const where = andClauses([{ text: "tenant_id = ? AND state IN ('active', 'final')", params: [tenantId] }, ...selectorSql(selector)]);
  return pluck<string>(`SELECT id FROM batches WHERE ${where.text}`, ...where.params);
}

export interface DeletedBatch {
  id: string;
  task: string | null;
  leaseIds: string[];
}

/**
 * Deletes visible batches of this tenant. Those whose items fit in what is left of one chunk's
 * budget go at once, with their items, attempts and leases (ON DELETE CASCADE); the others
 * become invisible at once (`deleting`: a 404 from here on, gone from every list and selector)
 * and lose their leases, and the dispatcher's sweeper removes their rows in bounded chunks
 * (src/store/sweeps.ts). Returns the deleted ids with the lease ids they still had in Redis,
 * for cleanup there.
 */
export function* deleteBatches(tenantId: string, ids: string[], chunkItems = DEFAULT_SWEEP_CHUNK_ITEMS, now = Date.now()): Op<DeletedBatch[]> {
  const out: DeletedBatch[] = [];
  let budget = chunkItems;
  // In slices: an IN list has a bound on its parameters (SQLite 32766, PostgreSQL 65535).
  for (let k = 0; k < ids.length; k += 1000) {
    const slice = ids.slice(k, k + 1000);
    const owned = yield* all<{ id: string; task: string | null; total: number }>(
      `SELECT id, task, total FROM batches WHERE tenant_id = ? AND id IN (${placeholders(slice.length)}) AND state IN ('active', 'final') ORDER BY id`,
      tenantId,
      ...slice,
    );
    if (owned.length === 0) continue;
    const marks = placeholders(owned.length);
    const leaseRows = yield* all<{ id: string; batchId: string }>(`SELECT id, batch_id AS "batchId" FROM leases WHERE batch_id IN (${marks})`, ...owned.map((b) => b.id));
    for (const b of owned) out.push({ id: b.id, task: b.task, leaseIds: leaseRows.filter((l) => l.batchId === b.id).map((l) => l.id) });
    const atOnce: string[] = [];
    const later: string[] = [];
    for (const b of owned) {
      if (Number(b.total) <= budget) {
        budget -= Number(b.total);
        atOnce.push(b.id);
      } else {
        later.push(b.id);
      }
    }
    if (atOnce.length > 0) yield* run(`DELETE FROM batches WHERE id IN (${placeholders(atOnce.length)})`, ...atOnce);
    if (later.length > 0) {
      const laterMarks = placeholders(later.length);
      yield* run(`DELETE FROM leases WHERE batch_id IN (${laterMarks})`, ...later);
      yield* run(`UPDATE batches SET state = 'deleting', sweep = 'delete', sweep_cursor = 0, updated_at = ? WHERE id IN (${laterMarks})`, now, ...later);
    }
  }
  return out;
}

/** Batches the dispatcher must keep reconciling. */
export function activeBatchIds(): Op<string[]> {
  return pluck<string>("SELECT id FROM batches WHERE state = 'active'");
}

/** Count of visible batches per phase, for /metrics. */
export function countBatchesByPhase(): Op<{ phase: string; n: number }[]> {
  return all<{ phase: string; n: number }>("SELECT phase, count(*) AS n FROM batches WHERE state IN ('active', 'final') GROUP BY phase");
}

/** Task names of visible batches (metrics label their queues by task). */
export function knownBatchTasks(): Op<string[]> {
  return pluck<string>('SELECT DISTINCT task FROM batches WHERE task IS NOT NULL');
}
