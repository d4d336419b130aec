import { decideFailedAttempt } from '../domain/failure-policy.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import type { Condition } from '../domain/batch-status.js';
import { all, get, pluck, run, value, type Op } from './op.js';
import { bumpCounters, haltBatch, lockBatch, parseDecisions, parseStatus, refreshStatus, type CounterDelta } from './batch-state.js';
import type { BatchObservation } from '../contracts/kubernetes-observation.js';
import type { IndexRange } from '../domain/index-ranges.js';
import { ItemFailedEvents } from './webhook-events.js';

/**
 * Mirroring what Kubernetes reports into the store, for batches whose items run as Job pods.
 * Kubernetes decides (the job controller applies backoffLimitPerIndex, podFailurePolicy and
 * maxFailedIndexes); the store records: items follow the Job's completedIndexes, failedIndexes
 * and active pods, every terminated pod becomes one attempt row, and a failed Job halts the batch
 * with the Job's own reason and message. One operation per observation; applying the same
 * observation twice changes nothing.
 * The Kubernetes side: docs/architecture.md#kubernetes-runtimes.
 */

const MAX_ERROR = 4096;

const INSERT_ATTEMPT = `INSERT INTO attempts (batch_id, idx, attempt, outcome, exit_code, http_status, condition, error, decision, worker, started_at, finished_at)
  VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?) ON CONFLICT (batch_id, idx, attempt) DO NOTHING`;
const MARK_RUNNING = `UPDATE items SET status = 'running', attempt = ?, started_at = coalesce(started_at, ?)
  WHERE batch_id = ? AND idx = ? AND status IN ('pending', 'running') AND (status <> 'running' OR attempt <> ?)`;

/**
 * Keeps the result `fanout exec` PUT for an item whose pod is still running (the pod succeeds
 * only after the PUT returned, so the result is there before the Job counts the index). The
 * first result of an item is the one kept: one conditional UPDATE decides among concurrent or
 * repeated uploads (a pod's retried PUT, a later pod after one that uploaded and then died), so
 * a recorded result, and the blob a download may be reading, is never replaced. False when the
 * item already has a result, failed or was cancelled.
 */
export function* storePodResult(batchId: string, index: number, result: string | null, blob: string | null): Op<boolean> {
  const changed = yield* run(
    `UPDATE items SET result = ?, result_blob = ?
      WHERE batch_id = ? AND idx = ? AND status IN ('pending', 'running', 'succeeded') AND result IS NULL AND result_blob IS NULL`,
    result,
    blob,
    batchId,
    index,
  );
  return changed > 0;
}

/** Applies one observation of a batch's Jobs and pods; true when anything changed. */
export function* applyKubernetesObservation(batchId: string, obs: BatchObservation, now = Date.now()): Op<boolean> {
  const row = yield* lockBatch(batchId);
  if (!row || row.state !== 'active') return false;
  const policy = (JSON.parse(row.spec) as BatchHeader).retry;
  let changed = false;
  const delta: CounterDelta = {};
  const add = (k: keyof CounterDelta, n: number) => (delta[k] = (delta[k] ?? 0) + n);

  for (const a of obs.attempts) {
    const decision = a.outcome === 'failed' ? decideFailedAttempt({ exitCode: a.exitCode, condition: a.condition }, policy, 0).reason : null;
    const error = a.message ? a.message.slice(-MAX_ERROR) : null;
    if ((yield* run(INSERT_ATTEMPT, batchId, a.index, a.attempt, a.outcome, a.exitCode ?? null, a.condition ?? null, error, decision, a.podName, a.startedAt ?? null, a.finishedAt)) > 0) {
      changed = true;
    }
  }

  // Final states first: an index the Job completed or failed leaves pending/running for good.
  const itemEvents = new ItemFailedEvents(batchId);
  const newlyFailed: number[] = [];
  for (const [status, ranges] of [['succeeded', obs.completed], ['failed', obs.failed]] as const) {
    for (const { first, last } of ranges) {
      for (const from of ['pending', 'running'] as const) {
        if (status === 'failed' && (yield* itemEvents.wanted())) {
          const ids = yield* pluck<number>('SELECT idx FROM items WHERE batch_id = ? AND idx BETWEEN ? AND ? AND status = ?', batchId, first, last, from);
          for (const id of ids) newlyFailed.push(id);
        }
        const moved = yield* finishRange(batchId, first, last, from, status, now);
        if (moved > 0) {
          changed = true;
          add(from, -moved);
          add(status, moved);
        }
      }
    }
  }
  if (obs.failed.length > 0) yield* explainFailures(batchId, obs.failed, policy);
  for (const index of newlyFailed) {
    const item = (yield* get<{ reason: string | null; error: string | null }>('SELECT reason, error FROM items WHERE batch_id = ? AND idx = ?', batchId, index))!;
    yield* itemEvents.record(index, item.reason, item.error, now);
  }

  for (const [index, attempt] of obs.running) {
    const before = yield* value<string>('SELECT status FROM items WHERE batch_id = ? AND idx = ?', batchId, index);
    if ((yield* run(MARK_RUNNING, attempt, now, batchId, index, attempt)) > 0) {
      changed = true;
      if (before === 'pending') {
        add('pending', -1);
        add('running', 1);
      }
    }
  }
  // Running in the store but with no live pod and not finished: waiting for its next pod.
  for (const index of yield* pluck<number>(`SELECT idx FROM items WHERE batch_id = ? AND status = 'running'`, batchId)) {
    if (obs.running.has(index)) continue;
    if ((yield* run(`UPDATE items SET status = 'pending' WHERE batch_id = ? AND idx = ? AND status = 'running'`, batchId, index)) > 0) {
      changed = true;
      add('running', -1);
      add('pending', 1);
    }
  }
  yield* bumpCounters(batchId, delta);

  if (obs.jobFailed && !parseDecisions(row).halt) {
    yield* haltBatch((yield* lockBatch(batchId))!, { phase: 'Failed', ...obs.jobFailed, at: new Date(now).toISOString() }, now);
    changed = true;
  }
  if ((yield* refreshStatus(batchId, now)).changed) changed = true;
  return changed;
}

function finishRange(batchId: string, first: number, last: number, from: 'pending' | 'running', to: 'succeeded' | 'failed', now: number): Op<number> {
  const errorSql = to === 'failed' ? ", failures = failures + 1, reason = 'BackoffLimitExceeded'" : ', error = NULL, reason = NULL';
  return run(`UPDATE items SET status = ?, finished_at = ?${errorSql} WHERE batch_id = ? AND idx BETWEEN ? AND ? AND status = ?`, to, now, batchId, first, last, from);
}

/**
 * Why an index failed, from its last failed attempt: the rule that matched (FailItem) or the
 * per-index backoff limit. Kubernetes does not say which, but the rules are the same ones.
 */
function* explainFailures(batchId: string, failed: IndexRange[], policy: BatchHeader['retry']): Op<void> {
  for (const { first, last } of failed) {
    const indexes = yield* pluck<number>(
      `SELECT idx FROM items WHERE batch_id = ? AND idx BETWEEN ? AND ? AND status = 'failed' AND error IS NULL`,
      batchId,
      first,
      last,
    );
    for (const index of indexes) {
      const lastAttempt = yield* get<{ exitCode: number | null; condition: 'Disruption' | 'Timeout' | null; error: string | null }>(
        `SELECT exit_code AS "exitCode", condition, error FROM attempts WHERE batch_id = ? AND idx = ? AND outcome = 'failed' ORDER BY attempt DESC LIMIT 1`,
        batchId,
        index,
      );
      const decision = lastAttempt
        ? decideFailedAttempt({ exitCode: lastAttempt.exitCode ?? undefined, condition: lastAttempt.condition ?? undefined }, { ...policy, backoffLimitPerItem: 0 }, 0)
        : undefined;
      const reason = decision && decision.kind !== 'retry' && decision.reason === 'FailItemRule' ? 'FailItemRule' : 'BackoffLimitExceeded';
      const message = lastAttempt?.error ?? (lastAttempt?.exitCode != null ? `last attempt exited with code ${lastAttempt.exitCode}` : 'the Job reported this index failed');
      yield* run('UPDATE items SET error = ?, reason = ? WHERE batch_id = ? AND idx = ?', message.slice(-MAX_ERROR), reason, batchId, index);
    }
  }
}

/** Sets (or clears, with `null`) a runtime condition on a batch, kept beside the phase's own. */
export function* setRuntimeCondition(
  batchId: string,
  type: string,
  wanted: { reason: string; message: string } | null,
  recovered: { reason: string; message: string } = { reason: 'Recovered', message: 'the Kubernetes API server answers again' },
  now = Date.now(),
): Op<boolean> {
  const row = yield* lockBatch(batchId);
  if (!row) return false;
  const status = parseStatus(row);
  const existing = status.conditions.find((c) => c.type === type);
  if (wanted === null) {
    if (!existing || existing.status === 'False') return false;
    const next: Condition = { ...existing, status: 'False', ...recovered, lastTransitionTime: new Date(now).toISOString() };
    status.conditions = status.conditions.map((c) => (c.type === type ? next : c));
  } else {
    if (existing && existing.status === 'True' && existing.reason === wanted.reason && existing.message === wanted.message) return false;
    const time = existing && existing.status === 'True' ? existing.lastTransitionTime : new Date(now).toISOString();
    const next: Condition = { type, status: 'True', ...wanted, lastTransitionTime: time };
    status.conditions = existing ? status.conditions.map((c) => (c.type === type ? next : c)) : [...status.conditions, next];
  }
  yield* run('UPDATE batches SET status = ?, updated_at = ? WHERE id = ?', JSON.stringify(status), now, batchId);
  return true;
}

/** Items of a batch still open (pending or running) in an index range: a shard left to run. */
export function* openItemsInRange(batchId: string, first: number, last: number): Op<number> {
  return (yield* value<number>(`SELECT count(*) FROM items WHERE batch_id = ? AND idx BETWEEN ? AND ? AND status IN ('pending', 'running')`, batchId, first, last)) ?? 0;
}

/** An item's input (JSON text), for rendering its own Job. */
export function itemInput(batchId: string, index: number): Op<string | undefined> {
  return value<string>('SELECT input FROM items WHERE batch_id = ? AND idx = ?', batchId, index);
}

/** Open items below the release cursor: items whose Job was created (maybe lost since). */
export function openItemsBefore(batchId: string, cursor: number): Op<number[]> {
  return pluck<number>(`SELECT idx FROM items WHERE batch_id = ? AND idx < ? AND status IN ('pending', 'running')`, batchId, cursor);
}

/** Moves the release cursor forward (Jobs created up to `cursor`); never back. */
export function* advanceReleaseCursor(batchId: string, cursor: number): Op<void> {
  yield* run('UPDATE batches SET release_cursor = ? WHERE id = ? AND release_cursor < ?', cursor, batchId, cursor);
}
