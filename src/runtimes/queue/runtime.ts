import { DelayedError, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { HALT_PAUSE, HALT_STOP } from '../../contracts/halt.js';
import type { ItemReport } from '../../contracts/item-report.js';
import { planRelease } from '../../domain/release-planning.js';
import { allocateShares, leasePriority, type BatchShare } from '../../domain/fair-share.js';
import { shareCandidates } from '../../store/fair-share.js';
import type { BatchDecisions } from '../../domain/batch-status.js';
import type { BatchHeader } from '../../domain/batch-spec.js';
import { JSON_DEPTH_CEILING, nestsDeeperThan } from '../../domain/json-scan.js';
import { renderTemplate } from '../../domain/template.js';
import { closeRedis, settledBefore, soonerOf, type StopContext } from '../../lifecycle/stop-context.js';
import type { BatchRow, DeletedBatch } from '../../store/batch-queries.js';
import { parseDecisions, parseHeader, refreshStatus } from '../../store/batch-state.js';
import { nextRetryAt, releaseWithinQuota, type ReleasedLease } from '../../store/leases.js';
import { UNLIMITED_QUOTAS, type Quotas } from '../../domain/quotas.js';
import { applyReports, type ApplyResult } from '../../store/reports.js';
import { FencedOffError } from '../../store/leadership.js';
import { StoreUnavailableError, type Store } from '../../store/store.js';
import { ReportRecorder } from './report-recorder.js';
import type { Runtime } from '../runtime.js';
import { LeaseRecovery } from './lease-recovery.js';
import { batchQueueKey, REPORT_QUEUE, type LeaseJob, type Report } from './protocol.js';
import { RedisSide } from './redis-side.js';

/**
 * The queue runtime: a batch's items go to `fanout worker` processes as leases on Redis (BullMQ
 * jobs, src/runtimes/queue/protocol.ts) and come back as reports, which are recorded here. It
 * sets the batch's halt key, releases up to parallelism (`planRelease`) and enqueues the leases
 * the store released; its resync finds what Redis lost (`LeaseRecovery`). Redis is a cache of
 * work: everything here can be rebuilt from the store.
 * See docs/architecture.md#redis-is-a-cache.
 */

/** how long BullMQ may take to close its report worker and queues at shutdown */
const BULLMQ_CLOSE_MS = 2000;

/**
 * How long a report this dispatcher could not store (the database unreachable, the leadership
 * lost) waits before it is taken again; such a wait spends none of the report's attempts.
 */
const REPORT_PARKED_MS = 1000;

/**
 * Reports the dispatcher takes from Redis at once. The ReportRecorder stores the reports of a
 * batch that wait together in one transaction, so this bounds how many one transaction can
 * hold: at 8, a group held about two (each lease reports once at its end), and B on PostgreSQL
 * (`BENCH_ONLY=B BENCH_STORES=postgres npm run bench`) ran 15,500 items/s in 416 report
 * transactions; at 64, 21,000 items/s in 44.
 */
const REPORTS_AT_ONCE = 64;

/** A failure to store that is this side's, not the report's: the report is kept for later. */
const storeCannotTakeIt = (err: unknown) => err instanceof StoreUnavailableError || err instanceof FencedOffError;

/**
 * Most items one release transaction moves: a release of a whole window (20,000 items) took about
 * 290 ms on PostgreSQL in bench B, all of it before the first lease reached a worker.
 */
const RELEASE_STEP = 4096;

/** How soon a batch held back by its share looks again (a sibling may have finished meanwhile). */
const HELD_BACK_RECHECK_MS = 500;

/** One point of priority per 10 s waited (FANOUT_PRIORITY_AGING_SECONDS). */
export const DEFAULT_PRIORITY_AGING_MS = 10_000;

/** Counts what recorded reports did (`Metrics` in src/main/metrics.ts). */
export interface ReportMetrics {
  observeReport(items: ItemReport[], result: ApplyResult): void;
}

export interface QueueRuntimeOptions {
  store: Store;
  redisUrl: string;
  prefix: string;
  logger: Logger;
  metrics?: ReportMetrics;
  /** signs the batch-scoped token workers use against the API */
  tokenFor(batchId: string): string;
  /** wakes the dispatcher for a batch (a report was recorded) */
  notify(batchId: string): void;
  leaseMs: number;
  resyncMs: number;
  /** most items out in Redis at once per task queue, shared between tenants by weight */
  window?: number;
  maxLeaseSize?: number;
  /** the server-wide quota defaults (each tenant's overrides are read with every release) */
  quotaDefaults?: Quotas;
  /** a waiting batch's priority rises by one per this many ms (aging) */
  priorityAgingMs?: number;
}

export class QueueRuntime implements Runtime {
  readonly kind = 'queue';
  private redis!: Redis;
  private side!: RedisSide;
  private recovery!: LeaseRecovery;
  private reportWorker?: Worker;
  private reportConnection?: Redis;

  private readonly recorder: ReportRecorder;
  /**
   * Batches a quota held items of back at their last release, by tenant: woken when a report of
   * that tenant frees capacity (the periodic resync wakes them too, so after a restart this only
   * makes them start sooner; the counts themselves always come from the store).
   */
  private readonly heldByQuota = new Map<string, string>();
  private readonly tenantOfBatch = new Map<string, string>();

  constructor(private readonly o: QueueRuntimeOptions) {
    this.recorder = new ReportRecorder(o.store, storeCannotTakeIt);
  }

  /** Connects, finds out whether Redis lost its data since the last dispatcher, consumes reports. */
  async start(): Promise<void> {
    const base: RedisOptions = { maxRetriesPerRequest: 2, enableOfflineQueue: false, lazyConnect: true };
    this.redis = new Redis(this.o.redisUrl, base);
    this.redis.on('error', (err) => this.o.logger.debug({ err: err.message }, 'dispatcher redis error'));
    await this.redis.connect();
    this.side = new RedisSide(this.redis, this.o.prefix);
    this.recovery = new LeaseRecovery({ ...this.o, redis: this.redis, side: this.side });
    await this.recovery.checkEpoch();
    // BullMQ does not close a connection it was given: kept to disconnect it in stop().
    this.reportConnection = new Redis(this.o.redisUrl, { maxRetriesPerRequest: null });
    this.reportWorker = new Worker(REPORT_QUEUE, async (job: Job<Report>, token?: string) => this.onReport(job, token), {
      connection: this.reportConnection,
      prefix: this.o.prefix,
      concurrency: REPORTS_AT_ONCE,
      // A report taken by a dispatcher that then died waits for its lock to lapse, and the resync
      // will not judge any lease while it waits: recover it on the lease's time scale.
      lockDuration: this.o.leaseMs,
      stalledInterval: this.o.leaseMs,
      maxStalledCount: 5,
    });
    this.reportWorker.on('error', (err) => this.o.logger.warn({ err: err.message }, 'report worker error'));
  }

  /**
   * The report worker's BullMQ close is forced when Redis is down: a graceful one would wait for
   * a reconnection, and nothing it holds is lost (a report taken and not acknowledged is taken
   * again once its lock lapses).
   */
  async stop(ctx: StopContext): Promise<void> {
    const redisUp = this.redis?.status === 'ready' && this.reportConnection?.status === 'ready';
    if (!redisUp) ctx.abandon({ redis: 'unreachable' });
    const closing = Promise.all([this.reportWorker?.close(!redisUp), this.side?.close()]);
    await settledBefore(closing, soonerOf(ctx.drain, BULLMQ_CLOSE_MS));
    await Promise.all([closeRedis(this.reportConnection), closeRedis(this.redis)]);
  }

  /**
   * A final batch: its halt key says `stop`. An active one: halted or suspended, its halt key
   * says so and nothing is released; otherwise the key goes and items are released up to
   * `min(parallelism, window) − running`. Returns when the next retry backoff ends.
   */
  async reconcile(row: BatchRow): Promise<number | null> {
    const { store } = this.o;
    const batchId = row.id;
    if (row.state !== 'active') {
      this.heldByQuota.delete(batchId);
      this.tenantOfBatch.delete(batchId);
      await this.side.halt([batchId]);
      return null;
    }
    const now = Date.now();
    const header = parseHeader(row);
    const decisions = parseDecisions(row);
    if (decisions.halt || decisions.suspended) {
      await this.side.halt([batchId], decisions.halt ? HALT_STOP : HALT_PAUSE);
      await store.write(refreshStatus(batchId, now));
      return null;
    }
    await this.side.unhalt(batchId);
    // A batch with its own Kubernetes workers gets a queue of its own (they take only its items).
    const ownQueue = header.workers?.kubernetes !== undefined;
    const share = row.task && !ownQueue ? await this.shareOf(row, now) : null;
    const plan = planRelease({
      parallelism: row.parallelism,
      running: row.running,
      pending: row.pending,
      window: share ? share.limit : this.window,
      maxLeaseSize: this.o.maxLeaseSize ?? 256,
    });
    if (plan.count > 0 && row.task) {
      const queue = ownQueue ? batchQueueKey(batchId) : row.task;
      this.tenantOfBatch.set(batchId, row.tenantId);
      // In steps: workers get the first leases of a large release after one step's transaction
      // instead of all of it, and reports of the batch wait on its row for one step at most.
      let running = row.running;
      for (let left = plan.count; left > 0; ) {
        const step = Math.min(left, RELEASE_STEP);
        const { leases: released, heldByQuota } = await store.write(releaseWithinQuota(batchId, queue, step, plan.leaseSize, now, this.o.quotaDefaults ?? UNLIMITED_QUOTAS));
        if (heldByQuota) this.heldByQuota.set(batchId, row.tenantId);
        else this.heldByQuota.delete(batchId);
        await this.enqueue(batchId, queue, row.task, header, released, running, share);
        const count = released.reduce((n, lease) => n + lease.items.length, 0);
        if (count < step || heldByQuota) break;
        running += count;
        left -= count;
      }
    }
    // Held back by its share while it has work: look again soon, as the share grows when another
    // batch finishes, without waiting for a report of this one.
    const heldBack = share !== null && row.pending > 0 && plan.count === 0 && share.limit < Math.min(row.parallelism, this.window);
    await store.write(refreshStatus(batchId, now));
    const nextRetry = await store.read(nextRetryAt(batchId));
    if (heldBack) return nextRetry === null ? now + HELD_BACK_RECHECK_MS : Math.min(nextRetry, now + HELD_BACK_RECHECK_MS);
    return nextRetry;
  }

  private get window(): number {
    return this.o.window ?? 20_000;
  }

  /**
   * This batch's share of its task queue's release budget (src/domain/fair-share.ts), computed
   * from the store's view of every active batch on the queue: nothing of it lives only here, so
   * a restarted or newly elected dispatcher goes on where this one stopped.
   */
  private async shareOf(row: BatchRow, now: number): Promise<BatchShare | null> {
    const rows = await this.o.store.read(shareCandidates(row.task!));
    const candidates = rows.filter((c) => {
      const spec = JSON.parse(c.spec) as BatchHeader;
      const decisions = JSON.parse(c.decisions) as BatchDecisions;
      return spec.workers?.kubernetes === undefined && !decisions.halt && !decisions.suspended;
    });
    const shares = allocateShares(candidates, this.window, now, this.o.priorityAgingMs ?? DEFAULT_PRIORITY_AGING_MS);
    return shares.get(row.id) ?? null;
  }

  /**
   * Nothing left to do but drop what this runtime remembers of it: the process that deleted the
   * batch removed its waiting leases and set its halt key (`forgetDeleted`, which knows the lease
   * ids the store no longer has).
   */
  async forget(batchId: string): Promise<void> {
    this.heldByQuota.delete(batchId);
    this.tenantOfBatch.delete(batchId);
  }

  /** Halts deleted batches and removes their waiting leases (schedule history the dispatcher prunes). */
  forgetDeleted(deleted: DeletedBatch[]): Promise<void> {
    return this.side.forgetDeleted(deleted, this.o.logger);
  }

  /**
   * Redis that lost its data: every outstanding lease handed back, every active batch to
   * reconcile. Otherwise, with no reports waiting to be applied, leases Redis no longer has are
   * settled (`LeaseRecovery.checkLeases`).
   */
  async resync(active: string[], now: number): Promise<Iterable<string>> {
    const touched = await this.recovery.checkEpoch();
    if (touched) return touched;
    if ((await this.recovery.reportBacklog()) === 0) {
      for (const batchId of active) await this.recovery.checkLeases(batchId, now);
    }
    return [];
  }

  /** Records a worker's report and wakes the batch, whose reconcile releases the next items. */
  /**
   * Records a report (batched with others of its batch: ReportRecorder). A report the store could
   * not take because of this side (the database unreachable or restarting, this dispatcher's
   * leadership gone) is parked in BullMQ's delayed set and taken again later without spending an
   * attempt: failing it would spend all five in 15 s of an outage, BullMQ would drop it, and the
   * resync would hand its lease's items back to run again. A delayed report still counts as
   * backlog (LeaseRecovery.reportBacklog), so no lease is judged lost meanwhile. Any other error
   * is the report's own and fails it as usual.
   */
  private async onReport(job: Job<Report>, token: string | undefined): Promise<void> {
    const report = job.data;
    let result: ApplyResult;
    try {
      result = await this.recorder.record(report);
    } catch (err) {
      if (!storeCannotTakeIt(err)) throw err;
      this.o.logger.debug({ batchId: report.batchId, leaseId: report.leaseId, err: (err as Error).message }, 'report not stored now; parked until later');
      await job.moveToDelayed(Date.now() + REPORT_PARKED_MS, token);
      throw new DelayedError();
    }
    this.o.metrics?.observeReport(report.items, result);
    this.o.notify(report.batchId);
    this.wakeHeldBatchesOf(this.tenantOfBatch.get(report.batchId));
  }

  /** A report freed running items: the tenant's batches waiting for its quota may go on. */
  private wakeHeldBatchesOf(tenantId: string | undefined): void {
    if (tenantId === undefined) return;
    for (const [batchId, tenant] of this.heldByQuota) if (tenant === tenantId) this.o.notify(batchId);
  }

  /**
   * Adds released leases to the task's queue. A lease's BullMQ priority (lower runs first) comes
   * from the rank of its first item among its tenant's items out, relative to the tenant's share
   * (`leasePriority`), so the work queue interleaves tenants and batches instead of serving them
   * first come, first served: a small batch submitted after a huge one gets its items near the
   * front instead of behind the whole huge batch. A batch on a queue of its own has no share:
   * its rank alone orders its leases.
   */
  private async enqueue(batchId: string, queue: string, task: string, header: BatchHeader, released: ReleasedLease[], runningBefore: number, share: BatchShare | null): Promise<void> {
    released = await this.failUnsendable(batchId, released);
    if (released.length === 0) return;
    const token = this.o.tokenFor(batchId);
    const envTemplate = header.template?.env;
    let rank = runningBefore;
    const jobs = released.map((lease) => {
      const priority = leasePriority(share ?? { limit: this.window, rankBase: 0, tenantShare: this.window, effectivePriority: 0 }, rank);
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
      if (header.concurrencyKey !== undefined && header.maxConcurrentPerKey !== undefined) {
        // every item's key rendered at submission already (src/api/batch-submission.ts)
        data.keys = {};
        data.maxPerKey = header.maxConcurrentPerKey;
        for (const it of data.items) data.keys[it.i] = renderTemplate(header.concurrencyKey, it.v, it.i) as string;
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
}
