import type { ItemReport } from '../../contracts/item-report.js';

// Shared with the store and the API, defined below them; re-exported because workers and their
// tests know them as part of this protocol.
export { HALT_PAUSE, HALT_STOP, type HaltMode } from '../../contracts/halt.js';
export type { ItemOutcome, ItemReport } from '../../contracts/item-report.js';

/**
 * The wire contract between the dispatcher and `fanout worker` processes, carried by BullMQ.
 *
 * The dispatcher releases a *lease range*: one BullMQ job on the work queue of the batch's task
 * ({@link workQueueName}) holding a few items of one batch. The BullMQ job lock is the lease: the
 * worker renews it while it runs the items; when a worker dies the lock expires and BullMQ's
 * stalled check hands the job to another worker. Workers never open the store: they add
 * {@link Report} jobs to {@link REPORT_QUEUE} (results for some items of a lease) and the
 * dispatcher records them. Each item carries the attempt number it was released with; the store
 * ignores a result whose attempt is not the item's current one, so a stale lease never
 * overwrites a newer attempt.
 * Leases, reports and exactly once per attempt: docs/architecture.md#leases-and-attempts.
 */

export const WORK_QUEUE = 'fanout-work';

/**
 * The work queue of one task: `${WORK_QUEUE}.${task}`. BullMQ cannot filter jobs by content, so
 * each task has its own queue and a worker listens only on the queues of the tasks it registered;
 * a lease for a task no running worker knows simply waits. Task names never contain `:`.
 */
export function workQueueName(task: string): string {
  return `${WORK_QUEUE}.${task}`;
}

/**
 * The work queue of one batch that has its own workers (`workers: {kubernetes: …}` in its spec):
 * `${WORK_QUEUE}.batch.${batchId}`. The dispatcher puts that batch's leases here instead of on its
 * task's queue, and a worker started with `--batch ID` listens on this queue only, running each
 * lease with the task the lease names.
 */
export function batchWorkQueueName(batchId: string): string {
  return workQueueName(batchQueueKey(batchId));
}

/** The key of a batch's own queue among the task keys: {@link workQueueName}(batchQueueKey(id)). */
export function batchQueueKey(batchId: string): string {
  return `batch.${batchId}`;
}
export const REPORT_QUEUE = 'fanout-reports';

/** Redis key prefix used for all BullMQ queues of one Fanout installation. */
export const DEFAULT_PREFIX = 'fanout';

/** One item inside a lease range. */
export interface LeasedItem {
  /** item index in the batch */
  i: number;
  /** attempt number this release belongs to */
  a: number;
  /** the item's input (any JSON value) */
  v: unknown;
}

/** Data of one job on {@link workQueueName}(task) (job name `lease`). */
export interface LeaseJob {
  batchId: string;
  /** deterministic: `${batchId}.${firstIndex}.${firstAttempt}`; also the BullMQ job id */
  leaseId: string;
  task: string;
  /** batch-scoped bearer token for GET input / PUT result on the API */
  token: string;
  /** per-item environment from the batch template, already rendered, keyed by item index */
  env?: Record<string, Record<string, string>>;
  /** itemTimeoutSeconds * 1000, when the batch sets it */
  timeoutMs?: number;
  /** the batch's concurrencyKey rendered per item, keyed by item index (with maxPerKey) */
  keys?: Record<string, string>;
  /** the batch's maxConcurrentPerKey: items with the same key never run more than this many at once */
  maxPerKey?: number;
  items: LeasedItem[];
}

/**
 * Data of one job on {@link REPORT_QUEUE} (job name `report`).
 *
 * A worker sends several reports per lease when the lease runs long (progress), each holding only
 * items finished since the previous one, and always adds the last one before the lease job
 * completes. An item whose result exceeded the worker's inline limit is *left out* of every report:
 * the worker streamed it with `PUT /v1/batches/{batchId}/items/{i}/result` (headers
 * `Fanout-Attempt`, batch token) and the API recorded that attempt as succeeded itself. If that PUT
 * fails, the item is reported `failed` with an error saying so. Report job ids are
 * `${leaseId}.${run}.${seq}` where `run` is unique per execution of the lease, so a re-run lease
 * never collides with a report of the crashed run that the dispatcher has not yet consumed.
 */
export interface Report {
  batchId: string;
  leaseId: string;
  items: ItemReport[];
}

/**
 * Redis key set while a batch must not start new items. Its value, a `HaltMode`, says what
 * to do with items already running: `stop` (abort them) or `pause` (let them finish).
 */
export function haltKey(prefix: string, batchId: string): string {
  return `${prefix}:halt:${batchId}`;
}

/** Redis hash of task name -> JSON {kind, lastSeen} registered by workers. */
export function taskRegistryKey(prefix: string): string {
  return `${prefix}:tasks`;
}

/** Redis key whose disappearance tells the dispatcher that Redis lost its data. */
export function epochKey(prefix: string): string {
  return `${prefix}:epoch`;
}
