import { and, isNotNull, lte, sql } from 'drizzle-orm';
import { customIdOf } from '../domain/batch-spec.js';
import { TransitionError } from '../domain/batch-status.js';
import { SCHEDULE_LABEL, type ScheduleSpec } from '../domain/schedule-spec.js';
import { concurrencyDecision, historyToPrune, planDue } from '../domain/schedule-time.js';
import { applyBatchAction } from './batch-actions.js';
import { createBatch } from './batch-create.js';
import { deleteBatches } from './batch-queries.js';
import type { StoreHandle } from './db.js';
import { scheduleRuns, schedules } from './schema.js';
import { activeScheduleBatches, getScheduleById, parseScheduleSpec, parseScheduleStatus, type ScheduleRow, type ScheduleStatus } from './schedules.js';

/**
 * Running schedules. Each tick is ONE immediate SQLite transaction: re-read the schedule, decide
 * (due ticks, missed ones, starting deadline, concurrency policy), insert the schedule_runs row
 * for the tick, create the batch (with its dispatch outbox row) or record the skip, and move
 * next_run_at. The transaction takes SQLite's write lock before reading, so a second dispatcher
 * sees the tick already handled; the (schedule_id, tick_at) primary key refuses a duplicate run
 * even if it did not. Nothing here awaits.
 * Schedules in the dispatcher: docs/architecture.md#schedules.
 */

/** Run records kept per schedule (the newest); older ones are pruned with each tick. */
const RUNS_KEPT = 50;

/** What a tick did, for the caller to act on outside the transaction. */
export interface TickOutcome {
  scheduleId: string;
  tenantId: string;
  tick: number;
  started: string | null;
  cancelled: string[];
  skipped: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Schedules whose next run is due, at most `limit`. */
export function dueScheduleIds(store: StoreHandle, now: number, limit = 100): string[] {
  return store.db
    .select({ id: schedules.id })
    .from(schedules)
    .where(and(isNotNull(schedules.nextRunAt), lte(schedules.nextRunAt, now)))
    .orderBy(schedules.nextRunAt)
    .limit(limit)
    .all()
    .map((r) => r.id);
}

/** Creates one batch from the template, labelled with the schedule (after validation: the label is ours). */
function startBatch(store: StoreHandle, row: ScheduleRow, spec: ScheduleSpec, tick: number, now: number): string {
  const { items, ...template } = spec.batchTemplate;
  const header = {
    ...template,
    name: template.name ?? `${spec.name ?? row.id}-${Math.floor(tick / 1000)}`,
    labels: { ...(template.labels ?? {}), [SCHEDULE_LABEL]: row.id },
  };
  const rows = items.map((item) => ({ input: JSON.stringify(item === undefined ? null : item), customId: customIdOf(item) }));
  return createBatch(store, row.tenantId, header, rows, undefined, now);
}

function insertRun(store: StoreHandle, scheduleId: string, tick: number, outcome: 'started' | 'skipped', batchId: string | null, reason: string | null, now: number): void {
  store.db.insert(scheduleRuns).values({ scheduleId, tickAt: tick, outcome, batchId, reason, createdAt: now }).run();
  store.sqlite
    .prepare('DELETE FROM schedule_runs WHERE schedule_id = ? AND tick_at < (SELECT tick_at FROM schedule_runs WHERE schedule_id = ? ORDER BY tick_at DESC LIMIT 1 OFFSET ?)')
    .run(scheduleId, scheduleId, RUNS_KEPT - 1);
}

function writeStatus(store: StoreHandle, id: string, status: ScheduleStatus, nextRunAt: number | null | undefined, now: number): void {
  const set: Partial<typeof schedules.$inferInsert> = { status: JSON.stringify(status), updatedAt: now };
  if (nextRunAt !== undefined) set.nextRunAt = nextRunAt;
  store.db.update(schedules).set(set).where(sql`${schedules.id} = ${id}`).run();
}

/** Cancels batches as POST /cancel does; one already ending is left alone. */
function cancelBatches(store: StoreHandle, tenantId: string, ids: string[], now: number): string[] {
  const done: string[] = [];
  for (const id of ids) {
    try {
      applyBatchAction(store, tenantId, id, 'cancel', now);
      done.push(id);
    } catch (err) {
      if (!(err instanceof TransitionError)) throw err;
    }
  }
  return done;
}

function isDuplicateRun(err: unknown): boolean {
  return /UNIQUE constraint failed: schedule_runs|PRIMARY KEY/.test(String((err as Error)?.message)) || /schedule_runs/.test(String((err as { cause?: Error })?.cause?.message));
}

/**
 * Handles a due schedule: starts at most one batch (the latest due tick, if within the
 * starting deadline), reports earlier due ticks as missed, applies the concurrency policy.
 * Returns null when the schedule is not due (another dispatcher handled it) or gone.
 */
export function runDueSchedule(store: StoreHandle, scheduleId: string, now: number): TickOutcome | null {
  try {
    return store.sqlite.transaction(() => {
      const row = getScheduleById(store, scheduleId);
      if (!row || row.nextRunAt === null || row.nextRunAt > now) return null;
      const spec = parseScheduleSpec(row);
      const status = parseScheduleStatus(row);
      const plan = planDue({ ...spec, nextRunAt: row.nextRunAt, now });
      const outcome: TickOutcome = { scheduleId, tenantId: row.tenantId, tick: plan.run ?? plan.tooLate ?? now, started: null, cancelled: [], skipped: null };
      if (plan.missed.count > 0) {
        status.missed = {
          count: plan.missed.count,
          capped: plan.missed.capped,
          first: iso(plan.missed.first),
          last: iso(plan.missed.last),
          detectedAt: iso(now)!,
          message: `${plan.missed.capped ? 'at least ' : ''}${plan.missed.count} earlier ${plan.missed.count === 1 ? 'tick was' : 'ticks were'} missed (no scheduler was running); only the latest due tick is considered`,
        };
      }
      if (plan.tooLate !== null) {
        const message = `tick ${iso(plan.tooLate)} was ${Math.round((now - plan.tooLate) / 1000)}s ago, past startingDeadlineSeconds (${spec.startingDeadlineSeconds})`;
        insertRun(store, scheduleId, plan.tooLate, 'skipped', null, 'MissedStartingDeadline', now);
        status.lastSkipped = { time: iso(plan.tooLate)!, reason: 'MissedStartingDeadline', message };
        outcome.skipped = 'MissedStartingDeadline';
      } else if (plan.run !== null) {
        const active = activeScheduleBatches(store, row.tenantId, scheduleId);
        const decision = concurrencyDecision(spec.concurrencyPolicy, active);
        if (decision.action === 'skip') {
          insertRun(store, scheduleId, plan.run, 'skipped', null, 'ConcurrencyPolicyForbid', now);
          status.lastSkipped = { time: iso(plan.run)!, reason: 'ConcurrencyPolicyForbid', message: decision.reason };
          status.active = active;
          outcome.skipped = 'ConcurrencyPolicyForbid';
        } else {
          if (decision.action === 'replace') outcome.cancelled = cancelBatches(store, row.tenantId, decision.cancel, now);
          const batchId = startBatch(store, row, spec, plan.run, now);
          insertRun(store, scheduleId, plan.run, 'started', batchId, decision.action === 'replace' ? 'ReplacedActive' : null, now);
          status.lastScheduleTime = iso(plan.run);
          status.active = activeScheduleBatches(store, row.tenantId, scheduleId);
          outcome.started = batchId;
        }
      }
      writeStatus(store, scheduleId, status, spec.suspend ? null : plan.next, now);
      return outcome;
    }).immediate();
  } catch (err) {
    // Only reachable if two writers decided the same tick: the first one's run stands.
    if (isDuplicateRun(err)) return null;
    throw err;
  }
}

/**
 * POST /v1/schedules/{id}/trigger: one batch now, whatever the cron says, like
 * `kubectl create job --from=cronjob/…` (the concurrency policy and suspend do not apply).
 */
export function triggerSchedule(store: StoreHandle, tenantId: string, scheduleId: string, now: number): TickOutcome | null {
  return store.sqlite.transaction(() => {
    const row = getScheduleById(store, scheduleId);
    if (!row || row.tenantId !== tenantId) return null;
    const spec = parseScheduleSpec(row);
    const status = parseScheduleStatus(row);
    // A trigger in the same millisecond as a recorded tick takes the next free millisecond.
    let tick = now;
    while (store.sqlite.prepare('SELECT 1 FROM schedule_runs WHERE schedule_id = ? AND tick_at = ?').get(scheduleId, tick)) tick++;
    const batchId = startBatch(store, row, spec, tick, now);
    insertRun(store, scheduleId, tick, 'started', batchId, 'Triggered', now);
    status.active = activeScheduleBatches(store, tenantId, scheduleId);
    writeStatus(store, scheduleId, status, undefined, now);
    return { scheduleId, tenantId, tick, started: batchId, cancelled: [], skipped: null };
  }).immediate();
}

/**
 * Notices batches of schedules that finished since the last look: drops them from `active`,
 * moves lastSuccessfulTime. Returns the schedules that changed (their history may need pruning).
 */
export function syncFinishedRuns(store: StoreHandle, now: number): string[] {
  const pending = () => store.sqlite.prepare("SELECT id, tenant_id, status FROM schedules WHERE json_array_length(status, '$.active') > 0").all() as { id: string; tenant_id: string; status: string }[];
  const endedOf = (raw: { id: string; tenant_id: string; status: string }) => {
    const status = JSON.parse(raw.status) as ScheduleStatus;
    const still = activeScheduleBatches(store, raw.tenant_id, raw.id);
    return { status, still, ended: status.active.filter((b) => !still.includes(b)) };
  };
  // Looked at without the write lock first: most passes find nothing finished.
  if (!pending().some((raw) => endedOf(raw).ended.length > 0)) return [];
  return store.sqlite.transaction(() => {
    const changed: string[] = [];
    for (const raw of pending()) {
      const id = raw.id;
      const { status, still, ended } = endedOf(raw);
      if (ended.length === 0) continue;
      for (const b of ended) {
        const done = store.sqlite.prepare("SELECT phase, json_extract(status, '$.completionTime') AS completion FROM batches WHERE id = ?").get(b) as { phase: string; completion: string | null } | undefined;
        if (done?.phase === 'Succeeded' && done.completion && (!status.lastSuccessfulTime || done.completion > status.lastSuccessfulTime)) status.lastSuccessfulTime = done.completion;
      }
      status.active = status.active.filter((b) => still.includes(b));
      writeStatus(store, id, status, undefined, now);
      changed.push(id);
    }
    return changed;
  }).immediate();
}

/**
 * Deletes the schedule's finished batches beyond its history limits, in one transaction with
 * deleteBatches (the path of DELETE /v1/batches). Returns them for cleanup in Redis, the blob
 * directory and Kubernetes.
 */
export function pruneHistory(store: StoreHandle, scheduleId: string): ReturnType<typeof deleteBatches> {
  const row = getScheduleById(store, scheduleId);
  if (!row) return [];
  const spec = parseScheduleSpec(row);
  const finished = store.sqlite
    .prepare(
      `SELECT b.id, b.phase FROM batches b JOIN batch_labels l ON l.batch_id = b.id AND l.key = ? AND l.value = ?
        WHERE b.tenant_id = ? AND b.state = 'final'`,
    )
    .all(SCHEDULE_LABEL, scheduleId, row.tenantId) as { id: string; phase: string }[];
  const prune = historyToPrune(finished.map((f) => ({ ...f, order: f.id })), spec);
  return deleteBatches(store, row.tenantId, prune);
}
