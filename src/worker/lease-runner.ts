import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { ItemReport, LeasedItem, LeaseJob, Report } from '../runtimes/queue/protocol.js';
import { describeError } from './errors.js';
import { setLongTimeout } from '../domain/long-timeout.js';
import type { HaltCache } from './halt-cache.js';
import type { HaltWatch } from './halt-watch.js';
import { ItemTimeoutError, WorkerShutdownError, abortedByStop, onAbort } from './item-abort.js';
import { LeaseReporter } from './lease-reporter.js';
import type { Semaphore } from './semaphore.js';
import type { TaskContext, TaskHandler, TaskResult } from './tasks.js';

/**
 * Runs the items of one lease job. Every item waits for a permit of the process-wide semaphore,
 * then checks whether it should start at all (worker stopping, batch halted: reported `returned`,
 * no attempt used), runs, and its outcome goes to the lease's reporter. Resolves only after the
 * last report was added to the report queue.
 *
 * A running item has one AbortController, aborted by its timeout or by the {@link HaltWatch} when
 * its batch is stopped; the task kills or cancels whatever it runs. An item aborted that way is
 * reported `returned` too: the store has already cancelled it and ignores the report (were it
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
}

/** Runs every item of `lease` with `handler` and reports all outcomes. */
export async function runLease(lease: LeaseJob, handler: TaskHandler, deps: LeaseRunnerDeps): Promise<void> {
  const logger = deps.logger.child({ leaseId: lease.leaseId, batchId: lease.batchId, task: lease.task });
  const reporter = new LeaseReporter(deps.reportQueue, lease, logger, deps.reportIntervalMs);
  const counts: Record<string, number> = { succeeded: 0, failed: 0, returned: 0, uploaded: 0 };
  const startedAt = Date.now();
  logger.debug({ items: lease.items.length }, 'lease started');
  try {
    await Promise.all(
      lease.items.map(async (item) => {
        const report = await runItem(lease, item, handler, deps, logger);
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
  }
  await reporter.finish();
  logger.debug({ ...counts, ms: Date.now() - startedAt }, 'lease finished');
}

/** One item: the report to send, or undefined when the API already recorded it (large result). */
async function runItem(
  lease: LeaseJob,
  item: LeasedItem,
  handler: TaskHandler,
  deps: LeaseRunnerDeps,
  logger: Logger,
): Promise<ItemReport | undefined> {
  const returned: ItemReport = { i: item.i, a: item.a, outcome: 'returned', worker: deps.workerName };
  if (deps.isStopping()) return returned;
  // Fair between batches: a batch's items do not all wait behind an earlier batch's leases.
  const release = await deps.semaphore.acquire(lease.batchId);
  try {
    try {
      // stop or pause: either way nothing new starts
      if (deps.isStopping() || (await deps.halts.mode(lease.batchId)) !== null) return returned;
    } catch (error) {
      // cannot tell whether the batch is halted: do not start, do not spend an attempt
      logger.warn({ index: item.i, err: describeError(error) }, 'halt check failed; returning the item');
      return returned;
    }
    const controller = new AbortController();
    const ctx: TaskContext = {
      batchId: lease.batchId,
      index: item.i,
      attempt: item.a,
      input: item.v,
      env: lease.env?.[String(item.i)] ?? {},
      timeoutMs: lease.timeoutMs,
      signal: controller.signal,
      token: lease.token,
      apiUrl: deps.apiUrl,
      inlineResultLimit: deps.inlineResultLimit,
      logger,
    };
    const { timeoutMs } = lease;
    // Any length: itemTimeoutSeconds may be past what setTimeout holds (24.8 days).
    const timer = timeoutMs !== undefined ? setLongTimeout(() => controller.abort(new ItemTimeoutError(timeoutMs)), timeoutMs) : undefined;
    const untrack = deps.haltWatch.track(lease.batchId, controller);
    const unlinkShutdown = deps.shutdownCut ? onAbort(deps.shutdownCut, () => controller.abort(new WorkerShutdownError())) : () => {};
    const startedAt = Date.now();
    let result: TaskResult;
    try {
      result = await handler(ctx);
    } catch (error) {
      result = { outcome: 'failed', error: `worker error: ${describeError(error)}` };
    } finally {
      timer?.cancel();
      untrack();
      unlinkShutdown();
    }
    const finishedAt = Date.now();
    logger.debug({ index: item.i, attempt: item.a, outcome: result.outcome, ms: finishedAt - startedAt }, 'item done');
    if (result.recordedByApi) return undefined;
    if (abortedByStop(controller.signal)) {
      return { ...returned, error: describeError(controller.signal.reason), startedAt, finishedAt };
    }
    const { recordedByApi: _ignored, ...outcome } = result;
    return { i: item.i, a: item.a, ...outcome, startedAt, finishedAt, worker: deps.workerName };
  } finally {
    release();
  }
}
