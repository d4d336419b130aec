import { all, dialect, type Op } from './op.js';

export interface TaskBacklog {
  task: string;
  /** items no worker has taken yet */
  items: number;
}

/**
 * Items queued and not taken by a worker, per task of the queue runtime, for
 * `fanout_queue_backlog` (docs/operations.md "Metrics"): what an autoscaler of `fanout worker`
 * Deployments scales on. Two kinds of items wait for a worker of the task:
 *
 * - pending items, not yet released to Redis (beyond the release window or the batch's
 *   parallelism, in a retry backoff, or handed back), read from the per-batch counter the
 *   release and report transactions keep (`batches.pending`), not by counting item rows;
 * - items released in a lease that is still waiting in the task's queue: the store marks them
 *   running as soon as they are released, but no worker has them until it takes the lease. The
 *   caller names the leases workers hold (BullMQ's active jobs of the task queues, at most one
 *   per worker slot); every other outstanding lease of the task is waiting.
 *
 * Only batches whose items the dispatcher releases count: active, neither suspended nor halted
 * (phase Pending or Running), on the task's shared queue (a batch with its own Kubernetes
 * workers has a queue that those workers alone serve). The cost grows with the number of batches
 * and of outstanding leases (bounded by the release window), never with a batch's size. Every
 * task with a visible batch gets a row, 0 when nothing waits, so a scaler sees the backlog drop
 * to 0 rather than vanish.
 */
const backlogSql = (d: { workersUnset: string; leaseItems: string; notTaken: string }) => `WITH releasable AS (
    SELECT id, task, pending FROM batches
     WHERE task IS NOT NULL AND state = 'active' AND phase IN ('Pending', 'Running') AND ${d.workersUnset}
  ),
  waiting AS (
    SELECT b.task, sum(${d.leaseItems}) AS n
      FROM leases l JOIN releasable b ON b.id = l.batch_id
     WHERE l.task = b.task AND ${d.notTaken}
     GROUP BY b.task
  ),
  pending AS (SELECT task, sum(pending) AS n FROM releasable GROUP BY task)
  SELECT t.task AS task, coalesce(p.n, 0) + coalesce(w.n, 0) AS items
    FROM (SELECT DISTINCT task FROM batches WHERE task IS NOT NULL AND state IN ('active', 'final')) t
    LEFT JOIN pending p ON p.task = t.task
    LEFT JOIN waiting w ON w.task = t.task
   ORDER BY t.task`;

const BACKLOG = {
  sqlite: backlogSql({ workersUnset: "json_extract(spec, '$.workers') IS NULL", leaseItems: 'json_array_length(l.outstanding)', notTaken: 'l.id NOT IN (SELECT value FROM json_each(?))' }),
  postgres: backlogSql({ workersUnset: "(spec::jsonb -> 'workers') IS NULL", leaseItems: 'jsonb_array_length(l.outstanding::jsonb)', notTaken: 'NOT (l.id = ANY(?::text[]))' }),
};

export function* queueBacklogByTask(leasesTaken: Iterable<string>): Op<TaskBacklog[]> {
  const taken = [...leasesTaken];
  // The leases workers hold: a JSON array for SQLite's json_each, a text[] for PostgreSQL.
  const param = (yield* dialect()) === 'sqlite' ? JSON.stringify(taken) : taken;
  return yield* all<TaskBacklog>(BACKLOG, param);
}
