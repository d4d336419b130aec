import { customIdOf } from '../domain/batch-spec.js';
import { checkTransition, TransitionError, type Phase } from '../domain/batch-status.js';
import { SCHEDULE_LABEL, type ScheduleSpec } from '../domain/schedule-spec.js';
import { concurrencyDecision, historyToPrune, planDue } from '../domain/schedule-time.js';
import { applyBatchAction } from './batch-actions.js';
import { createBatch } from './batch-create.js';
import { checkSubmission } from './quotas.js';
import { UNLIMITED_QUOTAS, type Quotas } from '../domain/quotas.js';
import { deleteBatches, type DeletedBatch } from './batch-queries.js';
import { all, get, pluck, run, value, type Op } from './op.js';
import { activeScheduleBatches, getScheduleById, lockSchedule, parseScheduleSpec, parseScheduleStatus, type ScheduleRow, type ScheduleStatus } from './schedules.js';

/**
 * Running schedules. Each tick is ONE write operation: re-read the schedule locked, decide
 * (due ticks, missed ones, starting deadline, concurrency policy), insert the schedule_runs row
 * for the tick, create the batch (with its dispatch outbox row) or record the skip, and move
 * next_run_at. The lock (SQLite's write lock, PostgreSQL's row lock) makes a second dispatcher
 * see the tick already handled; the (schedule_id, tick_at) primary key refuses a duplicate run
 * even if it did not (DuplicateTickError rolls the whole tick back).
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

/** A second writer decided a tick already recorded: its operation rolls back, the first one stands. */
export class DuplicateTickError extends Error {}

/** Schedules whose next run is due, at most `limit`. */
export function dueScheduleIds(now: number, limit = 100): Op<string[]> {
  return pluck<string>('SELECT id FROM schedules WHERE next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at LIMIT ?', now, limit);
}

/** Creates one batch from the template, labelled with the schedule (after validation: the label is ours). */
function startBatch(row: ScheduleRow, spec: ScheduleSpec, tick: number, now: number, quotaDefaults: Quotas): Op<string> {
  const { items, ...template } = spec.batchTemplate;
  const header = {
    ...template,
    name: template.name ?? `${spec.name ?? row.id}-${Math.floor(tick / 1000)}`,
    labels: { ...(template.labels ?? {}), [SCHEDULE_LABEL]: row.id },
  };
  const rows = items.map((item) => ({ input: JSON.stringify(item === undefined ? null : item), customId: customIdOf(item) }));
  return createBatch(row.tenantId, header, rows, undefined, now, quotaDefaults);
}

function* insertRun(scheduleId: string, tick: number, outcome: 'started' | 'skipped', batchId: string | null, reason: string | null, now: number): Op<void> {
  const added = yield* run(
    'INSERT INTO schedule_runs (schedule_id, tick_at, outcome, batch_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (schedule_id, tick_at) DO NOTHING',
    scheduleId,
    tick,
    outcome,
    batchId,
    reason,
    now,
  );
  if (added === 0) throw new DuplicateTickError(`schedule ${scheduleId} already has a run for tick ${tick}`);
  yield* run(
    'DELETE FROM schedule_runs WHERE schedule_id = ? AND tick_at < (SELECT tick_at FROM schedule_runs WHERE schedule_id = ? ORDER BY tick_at DESC LIMIT 1 OFFSET ?)',
    scheduleId,
    scheduleId,
    RUNS_KEPT - 1,
  );
}

function* writeStatus(id: string, status: ScheduleStatus, nextRunAt: number | null | undefined, now: number): Op<void> {
  if (nextRunAt === undefined) yield* run('UPDATE schedules SET status = ?, updated_at = ? WHERE id = ?', JSON.stringify(status), now, id);
  else yield* run('UPDATE schedules SET status = ?, next_run_at = ?, updated_at = ? WHERE id = ?', JSON.stringify(status), nextRunAt, now, id);
}

/** Cancels batches as POST /cancel does; one already ending is left alone. */
function* cancelBatches(tenantId: string, ids: string[], now: number): Op<string[]> {
  const done: string[] = [];
  for (const id of ids) {
    const row = yield* get<{ phase: string; failed: number }>('SELECT phase, failed FROM batches WHERE id = ?', id);
    if (!row || !canCancel(row.phase, row.failed)) continue;
    yield* applyBatchAction(tenantId, id, 'cancel', now);
    done.push(id);
  }
  return done;
}

/** Whether the state machine lets a client cancel a batch in this phase (checked before, not caught: a failed statement ends a PostgreSQL transaction). */
function canCancel(phase: string, failed: number): boolean {
  try {
    checkTransition('cancel', phase as Phase, failed);
    return true;
  } catch (err) {
    if (err instanceof TransitionError) return false;
    throw err;
  }
}

/**
 * Handles a due schedule: starts at most one batch (the latest due tick, if within the
 * starting deadline), reports earlier due ticks as missed, applies the concurrency policy.
 * Returns null when the schedule is not due (another dispatcher handled it) or gone.
 */
export function* runDueSchedule(scheduleId: string, now: number, quotaDefaults: Quotas = UNLIMITED_QUOTAS): Op<TickOutcome | null> {
  const row = yield* lockSchedule(scheduleId);
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
    yield* insertRun(scheduleId, plan.tooLate, 'skipped', null, 'MissedStartingDeadline', now);
    status.lastSkipped = { time: iso(plan.tooLate)!, reason: 'MissedStartingDeadline', message };
    outcome.skipped = 'MissedStartingDeadline';
  } else if (plan.run !== null) {
    const active = yield* activeScheduleBatches(row.tenantId, scheduleId);
    const decision = concurrencyDecision(spec.concurrencyPolicy, active);
    const items = spec.batchTemplate.items.length;
    // Over a quota, the tick is skipped and recorded (the schedule goes on to its next tick):
    // its tenant's quota never holds up the schedules of other tenants.
    const refusal = decision.action === 'skip' ? null : yield* checkSubmission(row.tenantId, quotaDefaults, { batches: 1, items, storedItems: items }, now);
    if (refusal) {
      yield* insertRun(scheduleId, plan.run, 'skipped', null, 'QuotaExceeded', now);
      status.lastSkipped = { time: iso(plan.run)!, reason: 'QuotaExceeded', message: refusal.message };
      outcome.skipped = 'QuotaExceeded';
    } else if (decision.action === 'skip') {
      yield* insertRun(scheduleId, plan.run, 'skipped', null, 'ConcurrencyPolicyForbid', now);
      status.lastSkipped = { time: iso(plan.run)!, reason: 'ConcurrencyPolicyForbid', message: decision.reason };
      status.active = active;
      outcome.skipped = 'ConcurrencyPolicyForbid';
    } else {
      if (decision.action === 'replace') outcome.cancelled = yield* cancelBatches(row.tenantId, decision.cancel, now);
      const batchId = yield* startBatch(row, spec, plan.run, now, quotaDefaults);
      yield* insertRun(scheduleId, plan.run, 'started', batchId, decision.action === 'replace' ? 'ReplacedActive' : null, now);
      status.lastScheduleTime = iso(plan.run);
      status.active = yield* activeScheduleBatches(row.tenantId, scheduleId);
      outcome.started = batchId;
    }
  }
  yield* writeStatus(scheduleId, status, spec.suspend ? null : plan.next, now);
  return outcome;
}

/**
 * POST /v1/schedules/{id}/trigger: one batch now, whatever the cron says, like
 * `kubectl create job --from=cronjob/…` (the concurrency policy and suspend do not apply).
 */
export function* triggerSchedule(tenantId: string, scheduleId: string, now: number, quotaDefaults: Quotas = UNLIMITED_QUOTAS): Op<TickOutcome | null> {
  const row = yield* lockSchedule(scheduleId);
  if (!row || row.tenantId !== tenantId) return null;
  const spec = parseScheduleSpec(row);
  const status = parseScheduleStatus(row);
  // A trigger in the same millisecond as a recorded tick takes the next free millisecond.
  let tick = now;
  while ((yield* value<number>('SELECT 1 FROM schedule_runs WHERE schedule_id = ? AND tick_at = ?', scheduleId, tick)) !== undefined) tick++;
  const batchId = yield* startBatch(row, spec, tick, now, quotaDefaults);
  yield* insertRun(scheduleId, tick, 'started', batchId, 'Triggered', now);
  status.active = yield* activeScheduleBatches(tenantId, scheduleId);
  yield* writeStatus(scheduleId, status, undefined, now);
  return { scheduleId, tenantId, tick, started: batchId, cancelled: [], skipped: null };
}

type ScheduleWithActive = { id: string; tenantId: string; status: string };

/** Schedules with batches recorded as active, and which of those have ended since. */
function* endedRuns(): Op<{ raw: ScheduleWithActive; status: ScheduleStatus; still: string[]; ended: string[] }[]> {
  const rows = yield* all<ScheduleWithActive>({
    sqlite: `SELECT id, tenant_id AS "tenantId", status FROM schedules WHERE json_array_length(status, '$.active') > 0`,
    postgres: `SELECT id, tenant_id AS "tenantId", status FROM schedules WHERE jsonb_array_length(coalesce(status::jsonb -> 'active', '[]'::jsonb)) > 0`,
  });
  const out = [];
  for (const raw of rows) {
    const status = JSON.parse(raw.status) as ScheduleStatus;
    const still = yield* activeScheduleBatches(raw.tenantId, raw.id);
    const ended = status.active.filter((b) => !still.includes(b));
    if (ended.length > 0) out.push({ raw, status, still, ended });
  }
  return out;
}

/** Whether any schedule has a batch that finished since the last look (a read: most passes find none). */
export function* anyFinishedRuns(): Op<boolean> {
  return (yield* endedRuns()).length > 0;
}

/**
 * Notices batches of schedules that finished since the last look: drops them from `active`,
 * moves lastSuccessfulTime. Returns the schedules that changed (their history may need pruning).
 */
export function* syncFinishedRuns(now: number): Op<string[]> {
  const changed: string[] = [];
  for (const { raw, status, still, ended } of yield* endedRuns()) {
    for (const b of ended) {
      const done = yield* get<{ phase: string; status: string }>('SELECT phase, status FROM batches WHERE id = ?', b);
      const completion = done ? (JSON.parse(done.status) as { completionTime: string | null }).completionTime : null;
      if (done?.phase === 'Succeeded' && completion && (!status.lastSuccessfulTime || completion > status.lastSuccessfulTime)) status.lastSuccessfulTime = completion;
    }
    status.active = status.active.filter((b) => still.includes(b));
    yield* writeStatus(raw.id, status, undefined, now);
    changed.push(raw.id);
  }
  return changed;
}

/**
 * Deletes the schedule's finished batches beyond its history limits, in one operation with
 * deleteBatches (the path of DELETE /v1/batches). Returns them for cleanup in Redis, the blob
 * store and Kubernetes.
 */
export function* pruneHistory(scheduleId: string): Op<DeletedBatch[]> {
  const row = yield* getScheduleById(scheduleId);
  if (!row) return [];
  const spec = parseScheduleSpec(row);
  const finished = yield* all<{ id: string; phase: string }>(
    `SELECT b.id, b.phase FROM batches b JOIN batch_labels l ON l.batch_id = b.id AND l.key = ? AND l.value = ?
      WHERE b.tenant_id = ? AND b.state = 'final'`,
    SCHEDULE_LABEL,
    scheduleId,
    row.tenantId,
  );
  const prune = historyToPrune(finished.map((f) => ({ ...f, order: f.id })), spec);
  return yield* deleteBatches(row.tenantId, prune);
}
