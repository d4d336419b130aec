import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ItemReport, LeasedItem, LeaseJob, Report } from '../runtimes/queue/protocol.js';
import { describeError } from './errors.js';
import { setLongTimeout } from '../domain/long-timeout.js';
import type { HaltCache } from './halt-cache.js';
import type { HaltWatch } from './halt-watch.js';
import { AttemptAbort, ItemTimeoutError, WorkerShutdownError, abortedByStop, onAbort } from './item-abort.js';
import { LeaseReporter } from './lease-reporter.js';
import type { Semaphore } from './semaphore.js';
import { isLimited, type StartLimits, type StartPermit, type TaskLimiter } from '../runtimes/queue/task-limiter.js';
import { ADAPTIVE_RATE, type TaskLimits } from '../domain/task-limits.js';
import type { TaskContext, TaskHandler, TaskResult } from './tasks.js';

/**
 * Runs the items of one lease job. Every item waits for a permit of the process-wide semaphore,
 * then checks whether it should start at all (worker stopping, batch halted: reported `returned`,
 * no attempt used), runs, and its outcome goes to the lease's reporter. Resolves only after the
 * last report was added to the report queue.
 *
 * A running item has one {@link AttemptAbort}, aborted by its timeout, by the {@link HaltWatch}
 * when its batch is stopped, or when the worker's shutdown grace runs out; the task kills or
 * cancels whatever it runs. An item aborted by a stopped batch or the shutdown is reported
 * `returned` too: the store has already cancelled it and ignores the report (were it
 * still running there, `returned` would put it back to pending without spending an attempt).
 * Leases and attempts: docs/architecture.md#leases-and-attempts.
 */

/** What the runner needs from the worker around it. */
export interface LeaseRunnerDeps {
  semaphore: Semaphore;
  halts: HaltCache;
  haltWatch: HaltWatch;
  reportQueue: Queue<Report>;
  /** true once the worker is closing: items not yet started are returned */
  isStopping: () => boolean;
  /** aborts when the worker's shutdown grace is over: running items are cut and returned */
  shutdownCut?: AbortSignal;
  workerName: string;
  apiUrl?: string;
  inlineResultLimit: number;
  reportIntervalMs?: number;
  logger: Logger;
  /** limits shared by all workers (task rates and concurrency, concurrency keys); absent: none */
  limiter?: TaskLimiter;
  /** the declared limits of each task this worker runs */
  taskLimits?: ReadonlyMap<string, TaskLimits>;
}

/** Runs every item of `lease` with `handler` and reports all outcomes. */
export async function runLease(lease: LeaseJob, handler: TaskHandler, deps: LeaseRunnerDeps): Promise<void> {
  const logger = deps.logger.child({ leaseId: lease.leaseId, batchId: lease.batchId, task: lease.task });
  const reporter = new LeaseReporter(deps.reportQueue, lease, logger, deps.reportIntervalMs);
  const counts: Record<string, number> = { succeeded: 0, failed: 0, returned: 0, uploaded: 0 };
  const startedAt = Date.now();
  logger.debug({ items: lease.items.length }, 'lease started');
  // The lease's running attempts, all cut at once when the shutdown grace runs out: one listener
  // on the shutdown signal per lease, not one per item.
  const running = new Set<AttemptAbort>();
  const stopCutting = deps.shutdownCut ? onAbort(deps.shutdownCut, () => cutAll(running)) : () => {};
  try {
    await Promise.all(
      lease.items.map(async (item) => {
        const report = await runItem(lease, item, handler, deps, logger, running);
        if (report) {
          counts[report.outcome]++;
          reporter.add(report);
        } else {
          counts.uploaded++;
        }
      }),
    );
  } catch (error) {
    reporter.abandon();
    throw error;
  } finally {
    stopCutting();
  }
  await reporter.finish();
  logger.debug({ ...counts, ms: Date.now() - startedAt }, 'lease finished');
}

/** Aborts every attempt of `running` for the worker's shutdown. */
function cutAll(running: Set<AttemptAbort>): void {
  const reason = new WorkerShutdownError();
  for (const attempt of running) attempt.abort(reason);
}

/** One item: the report to send, or undefined when the API already recorded it (large result). */
async function runItem(
  lease: LeaseJob,
  item: LeasedItem,
  handler: TaskHandler,
  deps: LeaseRunnerDeps,
  logger: Logger,
  running: Set<AttemptAbort>,
): Promise<ItemReport | undefined> {
  const returned: ItemReport = { i: item.i, a: item.a, outcome: 'returned', worker: deps.workerName };
  const limits = startLimits(lease, item, deps);
  for (let resends = 0; ; resends++) {
    const slot = await takeSlot(lease, item, limits, deps, logger);
    if (!slot) return returned;
    let outcome: Attempt;
    try {
      outcome = await attempt(lease, item, handler, deps, logger, running);
    } finally {
      slot.release();
      await slot.permit?.release();
    }
    const { report, startedAt } = outcome;
    // The downstream service asked the whole task to slow down: slow it down and send this item
    // again in the same attempt, instead of failing it (ADAPTIVE_RATE in src/domain/task-limits.ts).
    if (
      limits?.limits.adaptive &&
      deps.limiter &&
      report?.outcome === 'failed' &&
      (report.httpStatus === 429 || report.httpStatus === 503) &&
      report.retryAfterMs !== undefined &&
      resends < ADAPTIVE_RATE.maxResends &&
      !deps.isStopping()
    ) {
      try {
        const rate = await deps.limiter.congested(lease.task, limits.limits, startedAt, report.retryAfterMs);
        if (rate !== undefined) logger.info({ task: lease.task, status: report.httpStatus, retryAfterMs: report.retryAfterMs, ratePerSecond: rate }, 'downstream asked to slow down: task rate decreased');
        continue;
      } catch (error) {
        logger.warn({ index: item.i, err: describeError(error) }, 'could not record the slow-down; failing the attempt as answered');
      }
    }
    return report;
  }
}

/** What limits the start of `item`, or undefined when nothing shared does. */
function startLimits(lease: LeaseJob, item: LeasedItem, deps: LeaseRunnerDeps): StartLimits | undefined {
  const key = lease.keys?.[String(item.i)];
  const start: StartLimits = {
    task: lease.task,
    limits: deps.taskLimits?.get(lease.task) ?? {},
    batchId: lease.batchId,
    key: key !== undefined && lease.maxPerKey ? { value: key, max: lease.maxPerKey } : undefined,
  };
  return deps.limiter && isLimited(start) ? start : undefined;
}

interface Slot {
  /** gives the process-wide slot back */
  release: () => void;
  /** the shared limits' permit, when the item has any */
  permit?: StartPermit;
}

/**
 * A process slot and, when limits apply, a permit under them; undefined when the item must not
 * start (worker stopping, batch halted, halt unknown). While a shared limit makes the item wait,
 * its process slot is given back, so items of other tasks or keys run meanwhile.
 */
async function takeSlot(lease: LeaseJob, item: LeasedItem, limits: StartLimits | undefined, deps: LeaseRunnerDeps, logger: Logger): Promise<Slot | undefined> {
  for (;;) {
    if (deps.isStopping()) return undefined;
    // Fair between batches: a batch's items do not all wait behind an earlier batch's leases.
    const release = await deps.semaphore.acquire(lease.batchId);
    try {
      // stop or pause: either way nothing new starts
      if (deps.isStopping() || (await deps.halts.mode(lease.batchId)) !== null) {
        release();
        return undefined;
      }
    } catch (error) {
      // cannot tell whether the batch is halted: do not start, do not spend an attempt
      logger.warn({ index: item.i, err: describeError(error) }, 'halt check failed; returning the item');
      release();
      return undefined;
    }
    if (!limits) return { release };
    let granted: Awaited<ReturnType<TaskLimiter['tryAcquire']>>;
    try {
      granted = await deps.limiter!.tryAcquire(limits);
    } catch (error) {
      logger.warn({ index: item.i, err: describeError(error) }, 'task limits unreadable (Redis); returning the item');
      release();
      return undefined;
    }
    if ('permit' in granted) return { release, permit: granted.permit };
    release();
    await sleep(granted.waitMs);
  }
}

interface Attempt {
  /** undefined when the API already recorded it (large result) */
  report: ItemReport | undefined;
  startedAt: number;
}

/** Runs one attempt of an item that holds its slot. */
async function attempt(lease: LeaseJob, item: LeasedItem, handler: TaskHandler, deps: LeaseRunnerDeps, logger: Logger, running: Set<AttemptAbort>): Promise<Attempt> {
  const returned: ItemReport = { i: item.i, a: item.a, outcome: 'returned', worker: deps.workerName };
  const abort = new AttemptAbort();
  const ctx: TaskContext = {
    batchId: lease.batchId,
    index: item.i,
    attempt: item.a,
    input: item.v,
    env: lease.env?.[String(item.i)] ?? {},
    timeoutMs: lease.timeoutMs,
    abort,
    token: lease.token,
    apiUrl: deps.apiUrl,
    inlineResultLimit: deps.inlineResultLimit,
    logger,
  };
  const { timeoutMs } = lease;
  // Any length: itemTimeoutSeconds may be past what setTimeout holds (24.8 days).
  const timer = timeoutMs !== undefined ? setLongTimeout(() => abort.abort(new ItemTimeoutError(timeoutMs)), timeoutMs) : undefined;
  const untrack = deps.haltWatch.track(lease.batchId, abort);
  // the shutdown's cut may have come while this item waited for its slot
  if (deps.shutdownCut?.aborted) abort.abort(new WorkerShutdownError());
  running.add(abort);
  const startedAt = Date.now();
  let result: TaskResult;
  try {
    result = await handler(ctx);
  } catch (error) {
    result = { outcome: 'failed', error: `worker error: ${describeError(error)}` };
  } finally {
    timer?.cancel();
    untrack();
    running.delete(abort);
  }
  const finishedAt = Date.now();
  logger.debug({ index: item.i, attempt: item.a, outcome: result.outcome, ms: finishedAt - startedAt }, 'item done');
  if (result.recordedByApi) return { report: undefined, startedAt };
  if (abortedByStop(abort)) {
    return { report: { ...returned, error: describeError(abort.reason), startedAt, finishedAt }, startedAt };
  }
  const { recordedByApi: _ignored, ...outcome } = result;
  return { report: { i: item.i, a: item.a, ...outcome, startedAt, finishedAt, worker: deps.workerName }, startedAt };
}
