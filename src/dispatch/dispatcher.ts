import type { Logger } from 'pino';
import { deadlineAt } from '../domain/release-planning.js';
import { activeBatchIds, getBatchById, type BatchRow } from '../store/batch-queries.js';
import { failBatch, parseDecisions, parseHeader, parseStatus } from '../store/batch-state.js';
import type { Store } from '../store/store.js';
import { takeOutbox } from '../store/outbox.js';
import { unboundedStop, type StopContext } from '../lifecycle/stop-context.js';
import type { KubernetesConfig } from '../config/config.js';
import { runtimesOf, type Runtime, type RuntimeKind } from '../runtimes/runtime.js';
import { QueueRuntime, type ReportMetrics } from '../runtimes/queue/runtime.js';
import type { BlobStore } from '../blobs/blob-store.js';
import { forgetBatches, type DeletedBatch } from './forget-batches.js';
import { Scheduler } from './scheduler.js';
import type { Quotas } from '../domain/quotas.js';
import { Sweeper } from './sweeper.js';
import { DEFAULT_SWEEP_CHUNK_ITEMS } from '../store/sweeps.js';

/**
 * The controller. Level-triggered like the Kubernetes job controller: `reconcile(batchId)` reads
 * the batch from the store and has the runtimes it needs converge on it (`runtimesOf`: the
 * queue runtime's halt keys and releases, the Kubernetes runtime's Jobs), whatever woke it. The
 * dispatcher itself keeps what every batch has: wake-ups (worker reports through the runtimes,
 * the outbox the API writes in its transactions, timers for retries and deadlines, a periodic
 * resync that also lets each runtime look for what it lost), deadlines, and the schedule loop.
 * Reconciles run one at a time, each batch's writes serialized by the store (a batch row is
 * locked by every operation that moves its items).
 * The dispatcher's place in a batch's life: docs/architecture.md#data-flow-of-a-batch.
 */

/** Longest single timer; see wakeAt. */
const MAX_WAKE_MS = 3_600_000;

export interface DispatcherOptions {
  store: Store;
  redisUrl: string;
  prefix: string;
  logger: Logger;
  metrics?: ReportMetrics;
  /** signs the batch-scoped token workers use against the API */
  tokenFor: (batchId: string) => string;
  leaseMs: number;
  resyncMs: number;
  /** most items out in Redis at once per task queue, shared between tenants by weight */
  window?: number;
  maxLeaseSize?: number;
  /** a waiting batch's priority rises by one per this many ms (aging) */
  priorityAgingMs?: number;
  outboxPollMs?: number;
  /** set: batches may run on Kubernetes (indexed-job, job-per-item, queue workers as a Job) */
  kubernetes?: KubernetesConfig;
  /** where results too large to inline are kept (schedules delete pruned batches' results there) */
  blobs?: BlobStore;
  /** how often the schedule loop looks for due schedules (default 1000 ms) */
  scheduleTickMs?: number;
  /** the server-wide quota defaults (FANOUT_QUOTA_*), under each tenant's own overrides */
  quotaDefaults?: Quotas;
  /** chunked work on a batch's items (cancel, retry, delete): items per chunk, rest between chunks */
  sweepChunkItems?: number;
  sweepPauseMs?: number;
}

export class Dispatcher {
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** in the order a batch's runtimes are reconciled and stopped: Kubernetes (when configured), then the queue */
  private runtimes: Runtime[] = [];
  private queue!: QueueRuntime;
  /** set once every runtime has started: wake-ups before that wait in `dirty` */
  private started = false;
  private pumping = false;
  private polling = false;
  private stopped = false;
  private intervals: NodeJS.Timeout[] = [];
  private scheduler?: Scheduler;
  private sweeper?: Sweeper;

  constructor(private readonly o: DispatcherOptions) {}

  async start(): Promise<void> {
    const notify = (id: string) => this.notify(id);
    this.queue = new QueueRuntime({ ...this.o, notify });
    this.runtimes = [this.queue];
    // The queue first: it finds out whether Redis lost its data before anything is released.
    await this.queue.start();
    if (this.o.kubernetes) {
      // Loaded only when configured: the Kubernetes client is tens of MB of heap (src/main/service.ts, kubernetesAdmission).
      const { KubernetesRuntime } = await import('../runtimes/kubernetes/runtime.js');
      const kubernetes = new KubernetesRuntime({
        config: this.o.kubernetes,
        store: this.o.store,
        logger: this.o.logger,
        redisUrl: this.o.redisUrl,
        redisPrefix: this.o.prefix,
        tokenFor: this.o.tokenFor,
        notify,
      });
      this.runtimes = [kubernetes, this.queue];
      await kubernetes.start();
    }
    this.started = true;
    this.intervals.push(setInterval(() => void this.resync(), this.o.resyncMs));
    this.intervals.push(setInterval(() => void this.pollOutbox(), this.o.outboxPollMs ?? 250));
    for (const id of await this.o.store.read(activeBatchIds())) this.notify(id);
    if (!this.pumping && this.dirty.size > 0) void this.pump();
    void this.pollOutbox();
    this.scheduler = new Scheduler({
      store: this.o.store,
      logger: this.o.logger,
      intervalMs: this.o.scheduleTickMs,
      quotaDefaults: this.o.quotaDefaults,
      notify,
      forget: (deleted) => this.forgetDeleted(deleted),
    });
    this.scheduler.start();
    this.sweeper = new Sweeper({
      store: this.o.store,
      logger: this.o.logger,
      chunkItems: this.o.sweepChunkItems ?? DEFAULT_SWEEP_CHUNK_ITEMS,
      pauseMs: this.o.sweepPauseMs ?? 0,
      onProgress: notify,
    });
    await this.sweeper.start();
  }

  /** Cleanup after batches were deleted here (schedule history), as DELETE /v1/batches does it. */
  private forgetDeleted(deleted: DeletedBatch[]): Promise<void> {
    return forgetBatches({ blobs: this.o.blobs, notify: (id) => this.notify(id), forgetInRedis: (gone) => this.queue.forgetDeleted(gone) }, deleted);
  }

  /** Marks a batch for reconciliation (the API calls this after its transactions). */
  notify(batchId: string): void {
    if (this.stopped) return;
    this.dirty.add(batchId);
    if (this.started && !this.pumping) void this.pump();
  }

  /** Stops reconciling at once (the store stays the truth; the next dispatcher converges again). */
  async stop(ctx: StopContext = unboundedStop()): Promise<void> {
    this.stopped = true;
    this.scheduler?.stop();
    await this.sweeper?.stop();
    for (const t of this.intervals) clearInterval(t);
    for (const t of this.timers.values()) clearTimeout(t);
    for (const runtime of this.runtimes) await runtime.stop(ctx);
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (!this.stopped && this.dirty.size > 0) {
        const id = this.dirty.values().next().value as string;
        this.dirty.delete(id);
        try {
          await this.reconcile(id);
        } catch (err) {
          // Retry later: Redis may be down; the store is unchanged for anything not committed.
          this.o.logger.warn({ batchId: id, err: (err as Error).message }, 'reconcile failed; retrying');
          this.wakeAt(id, Date.now() + 1000);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private wakeAt(batchId: string, at: number): void {
    const existing = this.timers.get(batchId);
    if (existing) clearTimeout(existing);
    // Capped: a far deadline must not overflow setTimeout (it would fire at once, in a loop);
    // waking early is harmless, reconcile just sets the next timer.
    const t = setTimeout(() => {
      this.timers.delete(batchId);
      this.notify(batchId);
    }, Math.min(MAX_WAKE_MS, Math.max(0, at - Date.now())));
    t.unref();
    this.timers.set(batchId, t);
  }

  /**
   * Converges one batch. Running it twice in a row changes nothing the second time. A deleted
   * batch is forgotten and a final one let go of by every runtime; an active one past its
   * deadline is failed (and then let go of); any other active one is handed to the runtimes it
   * needs, and woken again at the earliest time one of them or its deadline asks for.
   */
  async reconcile(batchId: string): Promise<void> {
    const row = await this.o.store.read(getBatchById(batchId));
    if (!row) {
      for (const runtime of this.runtimes) await runtime.forget(batchId);
      // Deleted, or still being deleted in chunks.
      this.sweeper?.kick(batchId);
      return;
    }
    if (row.sweep !== null) this.sweeper?.kick(batchId);
    if (row.state === 'final') {
      for (const runtime of this.runtimes) await runtime.reconcile(row);
      return;
    }
    if (row.state !== 'active') return;
    const now = Date.now();
    const header = parseHeader(row);
    const deadline = deadlineAt(parseStatus(row).startTime ?? new Date(row.createdAt).toISOString(), header.activeDeadlineSeconds);
    if (!parseDecisions(row).halt && deadline !== null && now >= deadline) {
      await this.o.store.write(failBatch(batchId, 'DeadlineExceeded', `batch was active longer than activeDeadlineSeconds (${header.activeDeadlineSeconds})`, now));
      // Now final (or deleted meanwhile): the runtimes let go of it.
      return this.reconcile(batchId);
    }
    const wakes = [deadline];
    for (const kind of runtimesOf(header)) wakes.push(await this.reconcileOn(kind, row));
    const wake = wakes.filter((t): t is number => t !== null).sort((a, b) => a - b)[0];
    if (wake !== undefined) this.wakeAt(batchId, Math.max(wake, now + 50));
  }

  /** One runtime's side of an active batch; the time it wants to look again, if any. */
  private async reconcileOn(kind: RuntimeKind, row: BatchRow): Promise<number | null> {
    const runtime = this.runtimes.find((r) => r.kind === kind);
    if (!runtime) {
      this.o.logger.warn({ batchId: row.id }, 'batch needs Kubernetes, but this dispatcher has no Kubernetes configuration');
      return null;
    }
    return runtime.reconcile(row);
  }

  private async pollOutbox(): Promise<void> {
    if (this.stopped || this.polling) return;
    this.polling = true;
    try {
      for (const id of await this.o.store.write(takeOutbox())) this.notify(id);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'outbox poll failed');
    } finally {
      this.polling = false;
    }
  }

  /**
   * The periodic resync: each runtime looks for what it lost (Redis data, leases lost with their
   * worker, objects of deleted batches), then every active batch is reconciled.
   */
  async resync(): Promise<void> {
    if (this.stopped) return;
    try {
      const active = await this.o.store.read(activeBatchIds());
      const now = Date.now();
      for (const runtime of this.runtimes) for (const id of await runtime.resync(active, now)) this.notify(id);
      for (const id of active) this.notify(id);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'resync failed');
    }
  }
}
