import { DelayedError, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { JSON_DEPTH_CEILING, nestsDeeperThan } from '../domain/json-scan.js';
import { renderTemplate } from '../domain/template.js';
import { activeBatchIds, getBatchById, type BatchRow } from '../store/batch-queries.js';
import { failBatch, parseDecisions, parseHeader, parseStatus, refreshStatus } from '../store/batch-state.js';
import { StoreUnavailableError, type Store } from '../store/store.js';
import { FencedOffError } from '../store/leadership.js';
import { nextRetryAt, releaseLeases, type ReleasedLease } from '../store/leases.js';
import { applyReports, type ApplyResult } from '../store/reports.js';
import { takeOutbox } from '../store/outbox.js';
import { batchQueueKey, HALT_PAUSE, HALT_STOP, REPORT_QUEUE, type LeaseJob, type Report } from '../runtimes/queue/protocol.js';
import { LeaseRecovery } from './lease-recovery.js';
import { deadlineAt, planRelease } from './planner.js';
import { RedisSide } from './redis-side.js';
import type { Metrics } from '../main/metrics.js';
import { closeRedis, settledBefore, soonerOf, unboundedStop, type StopContext } from '../lifecycle/stop-context.js';
import type { KubernetesConfig } from '../config/config.js';
import { KubernetesRuntime } from '../runtimes/kubernetes/runtime.js';
import type { BlobStore } from '../blobs/blob-store.js';
import { forgetBatches, type DeletedBatch } from './forget-batches.js';
import { Scheduler } from './scheduler.js';

/**
 * The controller. Level-triggered like the Kubernetes job controller: `reconcile(batchId)` reads
 * the batch from the store and converges Redis on it (halt flags, releases up to parallelism,
 * deadlines, final phase), whatever woke it. Wake-ups come from worker reports (BullMQ), the
 * outbox the API writes in its transactions, timers for retries and deadlines, and a periodic
 * resync that also finds leases Redis lost. Reconciles run one at a time, each batch's writes
 * serialized by the store (a batch row is locked by every operation that moves its items).
 * The dispatcher's place in a batch's life: docs/architecture.md#data-flow-of-a-batch.
 */

/** Longest single timer; see wakeAt. */
const MAX_WAKE_MS = 3_600_000;

/** how long BullMQ may take to close its report worker and queues at shutdown */
const BULLMQ_CLOSE_MS = 2000;

/**
 * How long a report this dispatcher could not store (the database unreachable, the leadership
 * lost) waits before it is taken again; such a wait spends none of the report's attempts.
 */
const REPORT_PARKED_MS = 1000;

/** BullMQ's largest job priority (2^21). */
const MAX_PRIORITY = 2_097_152;

export interface DispatcherOptions {
  store: Store;
  redisUrl: string;
  prefix: string;
  logger: Logger;
  metrics?: Metrics;
  /** signs the batch-scoped token workers use against the API */
  tokenFor: (batchId: string) => string;
  leaseMs: number;
  resyncMs: number;
  /** most items of one batch out in Redis at once */
  window?: number;
  maxLeaseSize?: number;
  outboxPollMs?: number;
  /** set: batches may run on Kubernetes (indexed-job, job-per-item, queue workers as a Job) */
  kubernetes?: KubernetesConfig;
  /** where results too large to inline are kept (schedules delete pruned batches' results there) */
  blobs?: BlobStore;
  /** how often the schedule loop looks for due schedules (default 1000 ms) */
  scheduleTickMs?: number;
}

export class Dispatcher {
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private redis!: Redis;
  private side!: RedisSide;
  private reportWorker?: Worker;
  private reportConnection?: Redis;
  private pumping = false;
  private polling = false;
  private stopped = false;
  private recovery!: LeaseRecovery;
  private intervals: NodeJS.Timeout[] = [];
  private kubernetes?: KubernetesRuntime;
  private scheduler?: Scheduler;

  constructor(private readonly o: DispatcherOptions) {}

  async start(): Promise<void> {
    const base: RedisOptions = { maxRetriesPerRequest: 2, enableOfflineQueue: false, lazyConnect: true };
    this.redis = new Redis(this.o.redisUrl, base);
    this.redis.on('error', (err) => this.o.logger.debug({ err: err.message }, 'dispatcher redis error'));
    await this.redis.connect();
    this.side = new RedisSide(this.redis, this.o.prefix);
    this.recovery = new LeaseRecovery({ ...this.o, redis: this.redis, side: this.side });
    await this.recovery.checkEpoch();
    if (this.o.kubernetes) {
      this.kubernetes = new KubernetesRuntime({
        config: this.o.kubernetes,
        store: this.o.store,
        logger: this.o.logger,
        redisUrl: this.o.redisUrl,
        redisPrefix: this.o.prefix,
        tokenFor: this.o.tokenFor,
        notify: (id) => this.notify(id),
      });
      await this.kubernetes.start();
    }
    // BullMQ does not close a connection it was given: kept to disconnect it in stop().
    this.reportConnection = new Redis(this.o.redisUrl, { maxRetriesPerRequest: null });
    this.reportWorker = new Worker(REPORT_QUEUE, async (job: Job<Report>, token?: string) => this.onReport(job, token), {
      connection: this.reportConnection,
      prefix: this.o.prefix,
      concurrency: 8,
      // A report taken by a dispatcher that then died waits for its lock to lapse, and the resync
      // will not judge any lease while it waits: recover it on the lease's time scale.
      lockDuration: this.o.leaseMs,
      stalledInterval: this.o.leaseMs,
      maxStalledCount: 5,
    });
    this.reportWorker.on('error', (err) => this.o.logger.warn({ err: err.message }, 'report worker error'));
    this.intervals.push(setInterval(() => void this.resync(), this.o.resyncMs));
    this.intervals.push(setInterval(() => void this.pollOutbox(), this.o.outboxPollMs ?? 250));
    for (const id of await this.o.store.read(activeBatchIds())) this.notify(id);
    void this.pollOutbox();
    this.scheduler = new Scheduler({
      store: this.o.store,
      logger: this.o.logger,
      intervalMs: this.o.scheduleTickMs,
      notify: (id) => this.notify(id),
      forget: (deleted) => this.forgetDeleted(deleted),
    });
    this.scheduler.start();
  }

  /** Cleanup after batches were deleted here (schedule history), as DELETE /v1/batches does it. */
  private forgetDeleted(deleted: DeletedBatch[]): Promise<void> {
    return forgetBatches(
      {
        blobs: this.o.blobs,
        notify: (id) => this.notify(id),
        forgetInRedis: async (gone) => {
          try {
            await this.side.halt(gone.map((d) => d.id));
            for (const d of gone) if (d.task) await this.side.removeLeases(d.task, d.leaseIds);
          } catch (err) {
            this.o.logger.warn({ err: (err as Error).message }, 'could not clean deleted batches from redis; their leases will be handed back');
          }
        },
      },
      deleted,
    );
  }

  /** Marks a batch for reconciliation (the API calls this after its transactions). */
  notify(batchId: string): void {
    if (this.stopped) return;
    this.dirty.add(batchId);
    if (!this.pumping) void this.pump();
  }

  /**
   * Stops reconciling at once (the store stays the truth; the next dispatcher converges again).
   * The report worker's BullMQ close is forced when Redis is down: a graceful one would wait for
   * a reconnection, and nothing it holds is lost (a report taken and not acknowledged is taken
   * again once its lock lapses).
   */
  async stop(ctx: StopContext = unboundedStop()): Promise<void> {
    this.stopped = true;
    this.scheduler?.stop();
    for (const t of this.intervals) clearInterval(t);
    for (const t of this.timers.values()) clearTimeout(t);
    await settledBefore(this.kubernetes?.stop() ?? Promise.resolve(), ctx.drain);
    const redisUp = this.redis?.status === 'ready' && this.reportConnection?.status === 'ready';
    if (!redisUp) ctx.abandon({ redis: 'unreachable' });
    const closing = Promise.all([this.reportWorker?.close(!redisUp), this.side?.close()]);
    await settledBefore(closing, soonerOf(ctx.drain, BULLMQ_CLOSE_MS));
    await Promise.all([closeRedis(this.reportConnection), closeRedis(this.redis)]);
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

  /** Converges one batch. Running it twice in a row changes nothing the second time. */
  async reconcile(batchId: string): Promise<void> {
    const { store } = this.o;
    const row = await store.read(getBatchById(batchId));
    if (!row) return this.kubernetes?.forget(batchId);
    if (row.state === 'final') {
      await this.reconcileOnKubernetes(row);
      return this.side.halt([batchId]);
    }
    if (row.state !== 'active') return;
    const now = Date.now();
    const header = parseHeader(row);
    const decisions = parseDecisions(row);
    const deadline = deadlineAt(parseStatus(row).startTime ?? new Date(row.createdAt).toISOString(), header.activeDeadlineSeconds);
    if (!decisions.halt && deadline !== null && now >= deadline) {
      await store.write(failBatch(batchId, 'DeadlineExceeded', `batch was active longer than activeDeadlineSeconds (${header.activeDeadlineSeconds})`, now));
      const halted = await store.read(getBatchById(batchId));
      if (halted) await this.reconcileOnKubernetes(halted);
      return this.side.halt([batchId]);
    }
    if (header.runtime !== 'queue') {
      // Kubernetes runs these items: the job controller retries and the runtime mirrors it.
      const wakeK8s = await this.reconcileOnKubernetes(row);
      const wake = [wakeK8s, deadline].filter((t): t is number => t !== null).sort((a, b) => a - b)[0];
      if (wake !== undefined) this.wakeAt(batchId, Math.max(wake, now + 50));
      return;
    }
    if (header.workers?.kubernetes) await this.reconcileOnKubernetes(row);
    if (decisions.halt || decisions.suspended) {
      await this.side.halt([batchId], decisions.halt ? HALT_STOP : HALT_PAUSE);
      await store.write(refreshStatus(batchId, now));
      return;
    }
    await this.side.unhalt(batchId);
    const plan = planRelease({
      parallelism: row.parallelism,
      running: row.running,
      pending: row.pending,
      window: this.o.window ?? 20_000,
      maxLeaseSize: this.o.maxLeaseSize ?? 256,
    });
    if (plan.count > 0 && row.task) {
      // A batch with its own Kubernetes workers gets a queue of its own (they take only its items).
      const queue = header.workers?.kubernetes ? batchQueueKey(batchId) : row.task;
      const released = await store.write(releaseLeases(batchId, queue, plan.count, plan.leaseSize, now));
      await this.enqueue(batchId, queue, row.task, header, released, row.running);
    }
    await store.write(refreshStatus(batchId, now));
    const nextRetry = await store.read(nextRetryAt(batchId));
    const wake = [nextRetry, deadline].filter((t): t is number => t !== null).sort((a, b) => a - b)[0];
    if (wake !== undefined) this.wakeAt(batchId, Math.max(wake, now + 50));
  }

  /**
   * Adds released leases to the task's queue. A lease's BullMQ priority is the rank of its first
   * item among the items of its batch already out (lower runs first), so the work queue interleaves
   * batches instead of serving them first come, first served: a small batch submitted after a huge
   * one gets its items near the front instead of behind the whole huge batch.
   */
  private async enqueue(batchId: string, queue: string, task: string, header: ReturnType<typeof parseHeader>, released: ReleasedLease[], runningBefore: number): Promise<void> {
    released = await this.failUnsendable(batchId, released);
    if (released.length === 0) return;
    const token = this.o.tokenFor(batchId);
    const envTemplate = header.template?.env;
    let rank = runningBefore;
    const jobs = released.map((lease) => {
      const priority = Math.min(MAX_PRIORITY, rank + 1);
      rank += lease.items.length;
      const data: LeaseJob = {
        batchId,
        leaseId: lease.leaseId,
        task,
        token,
        timeoutMs: header.itemTimeoutSeconds ? header.itemTimeoutSeconds * 1000 : undefined,
        items: lease.items.map((it) => ({ i: it.index, a: it.attempt, v: JSON.parse(it.input) })),
      };
      if (envTemplate) {
        data.env = {};
        for (const it of data.items) data.env[it.i] = renderTemplate(envTemplate, it.v, it.i) as Record<string, string>;
      }
      return { name: 'lease', data, opts: { jobId: lease.leaseId, priority, removeOnComplete: true, removeOnFail: { age: 86_400 } } };
    });
    try {
      await this.side.workQueue(queue).addBulk(jobs);
    } catch (err) {
      // Never delivered: hand the items back now (no attempt counted) rather than letting the
      // resync later take the missing leases for lost workers.
      for (const lease of released) await this.recovery.returnLease(batchId, lease.leaseId, lease.items.map((it) => [it.index, it.attempt]));
      throw err;
    }
  }

  /**
   * Fails, at once and for good, the items whose input nests deeper than any accepted body may
   * (stored before FANOUT_MAX_JSON_DEPTH was enforced): serializing one for a worker overflows the
   * stack, which would refuse the whole lease again on every wake-up. Returns the leases with
   * the items left to send.
   */
  private async failUnsendable(batchId: string, released: ReleasedLease[]): Promise<ReleasedLease[]> {
    const sendable: ReleasedLease[] = [];
    for (const lease of released) {
      const tooDeep = lease.items.filter((it) => nestsDeeperThan(it.input, JSON_DEPTH_CEILING));
      if (tooDeep.length === 0) {
        sendable.push(lease);
        continue;
      }
      const error = `the item's input is nested deeper than ${JSON_DEPTH_CEILING} levels, so it cannot be handed to a worker; submit it again within FANOUT_MAX_JSON_DEPTH`;
      await this.o.store.write(applyReports(batchId, lease.leaseId, tooDeep.map((it) => ({ i: it.index, a: it.attempt, outcome: 'failed' as const, nonRetriable: true, error }))));
      this.o.logger.warn({ batchId, indexes: tooDeep.map((it) => it.index) }, 'items failed at dispatch: input nested too deep');
      const rest = lease.items.filter((it) => !tooDeep.includes(it));
      if (rest.length > 0) sendable.push({ ...lease, items: rest });
    }
    return sendable;
  }

  /** The Kubernetes side of a batch, when it has one; the time to look again, if any. */
  private async reconcileOnKubernetes(row: BatchRow): Promise<number | null> {
    const header = parseHeader(row);
    if (header.runtime === 'queue' && !header.workers?.kubernetes) return null;
    if (!this.kubernetes) {
      if (row.state === 'active') this.o.logger.warn({ batchId: row.id }, 'batch needs Kubernetes, but this dispatcher has no Kubernetes configuration');
      return null;
    }
    return this.kubernetes.reconcile(row);
  }

  /**
   * A report the store could not take because of this side (the database unreachable or
   * restarting, this dispatcher's leadership gone) is parked in BullMQ's delayed set and taken
   * again later without spending an attempt: failing it would spend all five in 15 s of an
   * outage, BullMQ would drop it, and the resync would hand its lease's items back to run again.
   * A delayed report still counts as backlog (LeaseRecovery.reportBacklog), so no lease is judged
   * lost meanwhile. Any other error is the report's own and fails it as usual.
   */
  private async onReport(job: Job<Report>, token: string | undefined): Promise<void> {
    const report = job.data;
    let result: ApplyResult;
    try {
      result = await this.o.store.write(applyReports(report.batchId, report.leaseId, report.items));
    } catch (err) {
      if (!(err instanceof StoreUnavailableError || err instanceof FencedOffError)) throw err;
      this.o.logger.debug({ batchId: report.batchId, leaseId: report.leaseId, err: err.message }, 'report not stored now; parked until later');
      await job.moveToDelayed(Date.now() + REPORT_PARKED_MS, token);
      throw new DelayedError();
    }
    this.o.metrics?.observeReport(report.items, result);
    this.notify(report.batchId);
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

  /** The periodic resync: Redis data loss, leases lost with their worker, and every active batch. */
  async resync(): Promise<void> {
    if (this.stopped) return;
    try {
      const touched = await this.recovery.checkEpoch();
      if (touched) {
        for (const id of touched) this.notify(id);
        return;
      }
      if (this.kubernetes) {
        // Jobs of batches deleted by an API process that could not reach the cluster itself.
        for (const id of this.kubernetes.batchesOnCluster()) if (!(await this.o.store.read(getBatchById(id)))) this.notify(id);
      }
      const backlog = await this.recovery.reportBacklog();
      const now = Date.now();
      for (const batchId of await this.o.store.read(activeBatchIds())) {
        if (backlog === 0) await this.recovery.checkLeases(batchId, now);
        this.notify(batchId);
      }
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'resync failed');
    }
  }
}
