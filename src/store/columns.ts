import type { batches, items, attempts, schedules, scheduleRuns } from './sqlite/schema.js';

/**
 * Row shapes the operations return, the same on both adapters (the PostgreSQL adapter parses
 * 64-bit integers as numbers), and the column lists that produce them. Aliases are quoted:
 * PostgreSQL folds unquoted names to lower case.
 */
export type BatchRow = typeof batches.$inferSelect;
export type ItemRow = typeof items.$inferSelect;
export type AttemptRow = typeof attempts.$inferSelect;
export type ItemStatus = ItemRow['status'];
export type ScheduleRow = typeof schedules.$inferSelect;
export type ScheduleRunRow = typeof scheduleRuns.$inferSelect;

export const BATCH_COLUMNS = `id, tenant_id AS "tenantId", name, labels, spec, task, parallelism, priority, state, phase, decisions, status,
  release_cursor AS "releaseCursor", total, pending, running, succeeded, failed, cancelled, sweep, sweep_cursor AS "sweepCursor",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

export const ITEM_COLUMNS = `batch_id AS "batchId", idx, custom_id AS "customId", input, status, attempt, failures, lease_id AS "leaseId",
  not_before AS "notBefore", result, result_blob AS "resultBlob", error, reason, started_at AS "startedAt", finished_at AS "finishedAt",
  worker, exit_code AS "exitCode", http_status AS "httpStatus", attempt_started_at AS "attemptStartedAt", attempt_finished_at AS "attemptFinishedAt"`;

export const ATTEMPT_COLUMNS = `batch_id AS "batchId", idx, attempt, outcome, exit_code AS "exitCode", http_status AS "httpStatus", condition,
  error, decision, worker, started_at AS "startedAt", finished_at AS "finishedAt"`;

export const SCHEDULE_COLUMNS = `id, tenant_id AS "tenantId", name, labels, spec, status, next_run_at AS "nextRunAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

export const SCHEDULE_RUN_COLUMNS = `schedule_id AS "scheduleId", tick_at AS "tickAt", outcome, batch_id AS "batchId", reason, created_at AS "createdAt"`;

/** `?, ?, …` for an IN list of n values (n ≥ 1). */
export function placeholders(n: number): string {
  return n === 1 ? '?' : `?${', ?'.repeat(n - 1)}`;
}
