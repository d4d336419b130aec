import type { LabelRequirement } from '../domain/label-selector.js';
import { SCHEDULE_LABEL, type ScheduleSpec } from '../domain/schedule-spec.js';
import { nextTick } from '../domain/schedule-time.js';
import { all, get, pluck, run, type Op } from './op.js';
import { andClauses, selectorSql, type Clause } from './batch-queries.js';
import { compactId } from './ids.js';
import { SCHEDULE_COLUMNS, SCHEDULE_RUN_COLUMNS, type ScheduleRow, type ScheduleRunRow } from './columns.js';

/**
 * Schedules as stored: create, read, list by label selector, update (a changed cron, time zone
 * or suspend recomputes next_run_at), delete. Running them is in schedule-runs.ts.
 */

export type { ScheduleRow, ScheduleRunRow } from './columns.js';

/** What a schedule's runs left behind, kept in its `status` column. */
export interface ScheduleStatus {
  lastScheduleTime: string | null;
  lastSuccessfulTime: string | null;
  /** unfinished batches the schedule started, as last seen by a scheduler */
  active: string[];
  /** the last tick that started nothing, and why */
  lastSkipped: { time: string; reason: string; message: string } | null;
  /** ticks nobody ran because no scheduler was running at the time (the latest report) */
  missed: { count: number; capped: boolean; first: string | null; last: string | null; detectedAt: string; message: string } | null;
}

export const EMPTY_SCHEDULE_STATUS: ScheduleStatus = { lastScheduleTime: null, lastSuccessfulTime: null, active: [], lastSkipped: null, missed: null };

export function parseScheduleStatus(row: ScheduleRow): ScheduleStatus {
  return { ...EMPTY_SCHEDULE_STATUS, ...(JSON.parse(row.status) as Partial<ScheduleStatus>) };
}

export function parseScheduleSpec(row: ScheduleRow): ScheduleSpec {
  return JSON.parse(row.spec) as ScheduleSpec;
}

/** Sortable ids like batch ids (src/store/ids.ts), starting with "s". */
export function newScheduleId(now = Date.now()): string {
  return compactId('s', now);
}

/** The next run of a spec after `now`: null while suspended or when the expression has no next tick. */
export function nextRunOf(spec: ScheduleSpec, now: number): number | null {
  return spec.suspend ? null : nextTick(spec.schedule, spec.timeZone, now);
}

function* writeLabels(id: string, labels: Record<string, string> | undefined): Op<void> {
  yield* run('DELETE FROM schedule_labels WHERE schedule_id = ?', id);
  for (const [key, value] of Object.entries(labels ?? {})) yield* run('INSERT INTO schedule_labels (schedule_id, key, value) VALUES (?, ?, ?)', id, key, value);
}

export function* createSchedule(tenantId: string, spec: ScheduleSpec, now = Date.now()): Op<ScheduleRow> {
  const id = newScheduleId(now);
  yield* run(
    `INSERT INTO schedules (id, tenant_id, name, labels, spec, status, next_run_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    id,
    tenantId,
    spec.name ?? null,
    JSON.stringify(spec.labels ?? {}),
    JSON.stringify(spec),
    JSON.stringify(EMPTY_SCHEDULE_STATUS),
    nextRunOf(spec, now),
    now,
    now,
  );
  yield* writeLabels(id, spec.labels);
  return (yield* getSchedule(tenantId, id))!;
}

export function getSchedule(tenantId: string, id: string): Op<ScheduleRow | undefined> {
  return get<ScheduleRow>(`SELECT ${SCHEDULE_COLUMNS} FROM schedules WHERE id = ? AND tenant_id = ?`, id, tenantId);
}

export function getScheduleById(id: string): Op<ScheduleRow | undefined> {
  return get<ScheduleRow>(`SELECT ${SCHEDULE_COLUMNS} FROM schedules WHERE id = ?`, id);
}

/** The schedule row, locked until the operation commits (see lockBatch). */
export function lockSchedule(id: string): Op<ScheduleRow | undefined> {
  const text = `SELECT ${SCHEDULE_COLUMNS} FROM schedules WHERE id = ?`;
  return get<ScheduleRow>({ sqlite: text, postgres: `${text} FOR UPDATE` }, id);
}

/**
 * Replaces the spec. next_run_at is recomputed from now when the timing changed (cron, zone,
 * suspend); otherwise the pending tick stays, so an unrelated edit never skips or adds a run.
 */
export function* updateSchedule(tenantId: string, id: string, spec: ScheduleSpec, now = Date.now()): Op<ScheduleRow | undefined> {
  const row = yield* lockSchedule(id);
  if (!row || row.tenantId !== tenantId) return undefined;
  const old = parseScheduleSpec(row);
  const timingChanged = old.schedule !== spec.schedule || old.timeZone !== spec.timeZone || old.suspend !== spec.suspend || row.nextRunAt === null;
  yield* run(
    'UPDATE schedules SET name = ?, labels = ?, spec = ?, next_run_at = ?, updated_at = ? WHERE id = ?',
    spec.name ?? null,
    JSON.stringify(spec.labels ?? {}),
    JSON.stringify(spec),
    timingChanged ? nextRunOf(spec, now) : row.nextRunAt,
    now,
    id,
  );
  yield* writeLabels(id, spec.labels);
  return yield* getSchedule(tenantId, id);
}

/** Deletes the schedule and its run records; the batches it started stay (they carry its label). */
export function* deleteSchedule(tenantId: string, id: string): Op<boolean> {
  return (yield* run('DELETE FROM schedules WHERE id = ? AND tenant_id = ?', id, tenantId)) > 0;
}

export interface ScheduleListQuery {
  selector: LabelRequirement[];
  limit: number;
  after?: string;
}

/** Schedules newest first, filtered by label selector in SQL; one page and whether more follow. */
export function* listSchedules(tenantId: string, q: ScheduleListQuery): Op<{ rows: ScheduleRow[]; more: boolean }> {
  const clauses: Clause[] = [{ text: 'tenant_id = ?', params: [tenantId] }, ...selectorSql(q.selector, { table: 'schedule_labels', ownerId: 'schedule_id', id: 'schedules.id' })];
  if (q.after) clauses.push({ text: 'id < ?', params: [q.after] });
  const where = andClauses(clauses);
  const rows = yield* all<ScheduleRow>(`SELECT ${SCHEDULE_COLUMNS} FROM schedules WHERE ${where.text} ORDER BY id DESC LIMIT ?`, ...where.params, q.limit + 1);
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
}

/** The schedule's latest run records, newest first. */
export function recentRuns(id: string, limit = 10): Op<ScheduleRunRow[]> {
  return all<ScheduleRunRow>(`SELECT ${SCHEDULE_RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = ? ORDER BY tick_at DESC LIMIT ?`, id, limit);
}

/** Ids of the schedule's unfinished batches (state uploading never applies: schedules insert whole batches). */
export function activeScheduleBatches(tenantId: string, id: string): Op<string[]> {
  return pluck<string>(
    `SELECT b.id FROM batches b JOIN batch_labels l ON l.batch_id = b.id AND l.key = ? AND l.value = ?
      WHERE b.tenant_id = ? AND b.state = 'active' ORDER BY b.id`,
    SCHEDULE_LABEL,
    id,
    tenantId,
  );
}
