import { randomBytes } from 'node:crypto';
import { and, desc, eq, lt } from 'drizzle-orm';
import type { LabelRequirement } from '../domain/label-selector.js';
import { SCHEDULE_LABEL, type ScheduleSpec } from '../domain/schedule-spec.js';
import { nextTick } from '../domain/schedule-time.js';
import type { StoreHandle } from './db.js';
import { selectorSql } from './batch-queries.js';
import { scheduleLabels, scheduleRuns, schedules } from './schema.js';

/**
 * Schedules as stored: create, read, list by label selector, update (a changed cron, time zone
 * or suspend recomputes next_run_at), delete. Running them is in schedule-runs.ts.
 */

export type ScheduleRow = typeof schedules.$inferSelect;
export type ScheduleRunRow = typeof scheduleRuns.$inferSelect;

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

let lastMs = 0;
let sequence = 0;

/** Sortable ids like batch ids (time, sequence, randomness), starting with "s". */
export function newScheduleId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    sequence = 0;
  } else {
    sequence++;
  }
  return `s${lastMs.toString(36).padStart(9, '0')}${sequence.toString(36).padStart(3, '0')}${randomBytes(4).toString('hex').slice(0, 7)}`;
}

/** The next run of a spec after `now`: null while suspended or when the expression has no next tick. */
export function nextRunOf(spec: ScheduleSpec, now: number): number | null {
  return spec.suspend ? null : nextTick(spec.schedule, spec.timeZone, now);
}

function writeLabels(store: StoreHandle, id: string, labels: Record<string, string> | undefined): void {
  store.db.delete(scheduleLabels).where(eq(scheduleLabels.scheduleId, id)).run();
  const entries = Object.entries(labels ?? {});
  if (entries.length > 0) store.db.insert(scheduleLabels).values(entries.map(([key, value]) => ({ scheduleId: id, key, value }))).run();
}

export function createSchedule(store: StoreHandle, tenantId: string, spec: ScheduleSpec, now = Date.now()): ScheduleRow {
  const id = newScheduleId(now);
  return store.sqlite.transaction(() => {
    store.db
      .insert(schedules)
      .values({
        id,
        tenantId,
        name: spec.name ?? null,
        labels: JSON.stringify(spec.labels ?? {}),
        spec: JSON.stringify(spec),
        status: JSON.stringify(EMPTY_SCHEDULE_STATUS),
        nextRunAt: nextRunOf(spec, now),
        createdAt: now,
        updatedAt: now,
      })
      .run();
    writeLabels(store, id, spec.labels);
    return getSchedule(store, tenantId, id)!;
  })();
}

export function getSchedule(store: StoreHandle, tenantId: string, id: string): ScheduleRow | undefined {
  return store.db.select().from(schedules).where(and(eq(schedules.id, id), eq(schedules.tenantId, tenantId))).get();
}

export function getScheduleById(store: StoreHandle, id: string): ScheduleRow | undefined {
  return store.db.select().from(schedules).where(eq(schedules.id, id)).get();
}

/**
 * Replaces the spec. next_run_at is recomputed from now when the timing changed (cron, zone,
 * suspend); otherwise the pending tick stays, so an unrelated edit never skips or adds a run.
 */
export function updateSchedule(store: StoreHandle, tenantId: string, id: string, spec: ScheduleSpec, now = Date.now()): ScheduleRow | undefined {
  return store.sqlite.transaction(() => {
    const row = getSchedule(store, tenantId, id);
    if (!row) return undefined;
    const old = parseScheduleSpec(row);
    const timingChanged = old.schedule !== spec.schedule || old.timeZone !== spec.timeZone || old.suspend !== spec.suspend || row.nextRunAt === null;
    store.db
      .update(schedules)
      .set({
        name: spec.name ?? null,
        labels: JSON.stringify(spec.labels ?? {}),
        spec: JSON.stringify(spec),
        nextRunAt: timingChanged ? nextRunOf(spec, now) : row.nextRunAt,
        updatedAt: now,
      })
      .where(eq(schedules.id, id))
      .run();
    writeLabels(store, id, spec.labels);
    return getSchedule(store, tenantId, id);
  })();
}

/** Deletes the schedule and its run records; the batches it started stay (they carry its label). */
export function deleteSchedule(store: StoreHandle, tenantId: string, id: string): boolean {
  return store.db.delete(schedules).where(and(eq(schedules.id, id), eq(schedules.tenantId, tenantId))).run().changes > 0;
}

export interface ScheduleListQuery {
  selector: LabelRequirement[];
  limit: number;
  after?: string;
}

/** Schedules newest first, filtered by label selector in SQL; one page and whether more follow. */
export function listSchedules(store: StoreHandle, tenantId: string, q: ScheduleListQuery): { rows: ScheduleRow[]; more: boolean } {
  const where = [
    eq(schedules.tenantId, tenantId),
    ...selectorSql(q.selector, { table: scheduleLabels, ownerId: scheduleLabels.scheduleId, key: scheduleLabels.key, value: scheduleLabels.value, id: schedules.id }),
  ];
  if (q.after) where.push(lt(schedules.id, q.after));
  const rows = store.db.select().from(schedules).where(and(...where)).orderBy(desc(schedules.id)).limit(q.limit + 1).all();
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
}

/** The schedule's latest run records, newest first. */
export function recentRuns(store: StoreHandle, id: string, limit = 10): ScheduleRunRow[] {
  return store.db.select().from(scheduleRuns).where(eq(scheduleRuns.scheduleId, id)).orderBy(desc(scheduleRuns.tickAt)).limit(limit).all();
}

/** Ids of the schedule's unfinished batches (state uploading never applies: schedules insert whole batches). */
export function activeScheduleBatches(store: StoreHandle, tenantId: string, id: string): string[] {
  return store.sqlite
    .prepare(
      `SELECT b.id FROM batches b JOIN batch_labels l ON l.batch_id = b.id AND l.key = ? AND l.value = ?
        WHERE b.tenant_id = ? AND b.state = 'active' ORDER BY b.id`,
    )
    .pluck()
    .all(SCHEDULE_LABEL, id, tenantId) as string[];
}
