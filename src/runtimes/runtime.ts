import type { BatchHeader } from '../domain/batch-spec.js';
import type { StopContext } from '../lifecycle/stop-context.js';
import type { BatchRow } from '../store/batch-queries.js';

/**
 * What the dispatcher's control loop asks of a runtime, the part that makes a batch's items
 * run: the queue runtime (leases on Redis for `fanout worker` processes, src/runtimes/queue/)
 * or the Kubernetes runtime (Jobs, src/runtimes/kubernetes/). The dispatcher keeps what every
 * batch has whatever runs it (wake-ups, timers, the outbox, the resync loop, deadlines) and
 * decides with {@link runtimesOf} which runtimes a batch needs; a runtime converges its side on
 * the stored batch, level-triggered, whatever woke it.
 * See docs/architecture.md#data-flow-of-a-batch.
 */
export interface Runtime {
  readonly kind: RuntimeKind;
  /** Connects and starts watching; the dispatcher reconciles nothing before every runtime started. */
  start(): Promise<void>;
  /** Stops within `ctx`'s drain time; what cannot be handed back is recorded with `ctx.abandon`. */
  stop(ctx: StopContext): Promise<void>;
  /**
   * Converges this runtime on one batch: an active batch that needs it (see {@link runtimesOf}),
   * or any final batch, of which each runtime lets go (halts its work, removes its objects).
   * Returns when the dispatcher should look again (epoch ms; null: only when something changes).
   */
  reconcile(row: BatchRow): Promise<number | null>;
  /** A batch the store no longer has: removes whatever this runtime still holds of it. */
  forget(batchId: string): Promise<void>;
  /**
   * The periodic resync's look for what was lost outside the store (Redis data, a worker's
   * lease, objects of deleted batches); `active` are the active batches' ids. Returns the ids of
   * batches to reconcile beyond those (the dispatcher reconciles every active batch anyway).
   */
  resync(active: string[], now: number): Promise<Iterable<string>>;
}

export type RuntimeKind = 'queue' | 'kubernetes';

/**
 * The runtimes an active batch needs, in the order the dispatcher reconciles them: Kubernetes
 * for Jobs of its items (indexed-job, job-per-item) or of its own queue workers
 * (`workers.kubernetes`), then the queue for leases (runtime `queue`).
 */
export function runtimesOf(header: BatchHeader): RuntimeKind[] {
  const kinds: RuntimeKind[] = [];
  if (header.runtime !== 'queue' || header.workers?.kubernetes !== undefined) kinds.push('kubernetes');
  if (header.runtime === 'queue') kinds.push('queue');
  return kinds;
}
