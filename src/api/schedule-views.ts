import { z } from '@hono/zod-openapi';
import { labelsSchema } from '../domain/batch-spec.js';
import { scheduleSpecSchema } from '../domain/schedule-spec.js';
import type { Op } from '../store/op.js';
import { activeScheduleBatches, parseScheduleSpec, parseScheduleStatus, recentRuns, type ScheduleRow, type ScheduleRunRow } from '../store/schedules.js';

/** Schedules as the API answers with them, and the shapes for the OpenAPI document. */

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const scheduleRunSchema = z
  .object({
    time: z.string().meta({ description: 'The tick, or the time of a trigger.' }),
    outcome: z.enum(['started', 'skipped']),
    batchId: z.string().nullable(),
    reason: z.string().nullable().meta({ description: 'Triggered, ReplacedActive, ConcurrencyPolicyForbid, MissedStartingDeadline' }),
  })
  .meta({ id: 'ScheduleRun' });

export const scheduleStatusSchema = z
  .object({
    lastScheduleTime: z.string().nullable(),
    lastSuccessfulTime: z.string().nullable(),
    active: z.array(z.string()).meta({ description: 'Ids of the unfinished batches the schedule started.' }),
    nextRunTime: z.string().nullable().meta({ description: 'Null while suspended.' }),
    lastSkipped: z.object({ time: z.string(), reason: z.string(), message: z.string() }).nullable(),
    missed: z
      .object({ count: z.number().int(), capped: z.boolean(), first: z.string().nullable(), last: z.string().nullable(), detectedAt: z.string(), message: z.string() })
      .nullable()
      .meta({ description: 'Ticks nobody ran because no dispatcher was running then (the latest such report): how many, the first and the last.' }),
    recentRuns: z.array(scheduleRunSchema),
  })
  .meta({ id: 'ScheduleStatus' });

export const scheduleSchema = z
  .object({ id: z.string(), name: z.string().nullable(), labels: labelsSchema, createdAt: z.string(), updatedAt: z.string(), spec: scheduleSpecSchema, status: scheduleStatusSchema })
  .meta({ id: 'Schedule' });

export const scheduleListSchema = z.object({ items: z.array(scheduleSchema), nextCursor: z.string().nullable() }).meta({ id: 'ScheduleList' });

/** A schedule as the API answers it, from its row, its unfinished batches and its latest runs. */
export function scheduleView(row: ScheduleRow, active: string[], runs: ScheduleRunRow[]) {
  const status = parseScheduleStatus(row);
  return {
    id: row.id,
    name: row.name,
    labels: JSON.parse(row.labels) as Record<string, string>,
    createdAt: iso(row.createdAt)!,
    updatedAt: iso(row.updatedAt)!,
    spec: parseScheduleSpec(row),
    status: {
      lastScheduleTime: status.lastScheduleTime,
      lastSuccessfulTime: status.lastSuccessfulTime,
      // Derived now rather than the scheduler's last look, which may be a second old.
      active,
      nextRunTime: iso(row.nextRunAt),
      lastSkipped: status.lastSkipped,
      missed: status.missed,
      recentRuns: runs.map((r) => ({ time: iso(r.tickAt)!, outcome: r.outcome, batchId: r.batchId, reason: r.reason })),
    },
  };
}

export type ScheduleView = ReturnType<typeof scheduleView>;

/** Reads what a schedule's view needs besides its row (run inside a read or a write). */
export function* loadScheduleView(row: ScheduleRow): Op<ScheduleView> {
  // Derived now rather than the scheduler's last look, which may be a second old.
  const active = yield* activeScheduleBatches(row.tenantId, row.id);
  return scheduleView(row, active, yield* recentRuns(row.id));
}

/** Views of a page of schedules. */
export function* loadScheduleViews(rows: readonly ScheduleRow[]): Op<ScheduleView[]> {
  const views: ScheduleView[] = [];
  for (const row of rows) views.push(yield* loadScheduleView(row));
  return views;
}
