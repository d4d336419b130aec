import type { Logger } from 'pino';
import { HALT_STOP } from '../runtimes/queue/protocol.js';
import { describeError } from './errors.js';
import type { HaltCache } from './halt-cache.js';
import { BatchStoppedError, type AttemptAbort } from './item-abort.js';

/**
 * Aborts the running items of a batch once its halt key says `stop` (cancelled, failed, deleted),
 * so they stop holding worker slots, as Kubernetes deletes the pods of such a Job. `pause`
 * (suspended) leaves them running: they finish and their results count.
 *
 * One timer per batch with items running in this process, not one per item or lease: each tick is
 * one GET of the halt key whatever the number of items, and a batch with nothing running costs
 * nothing.
 */

export const HALT_CHECK_MS = 1000;

interface Watched {
  items: Set<AttemptAbort>;
  timer: NodeJS.Timeout;
  /** a check is waiting for Redis: during an outage, ticks must not pile up GETs */
  checking: boolean;
}

export class HaltWatch {
  private readonly batches = new Map<string, Watched>();

  constructor(
    private readonly halts: HaltCache,
    private readonly logger: Logger,
    private readonly intervalMs = HALT_CHECK_MS,
  ) {}

  /**
   * Aborts the item's `attempt` with a {@link BatchStoppedError} if the batch is stopped while it
   * runs. Call the returned function when the item ends.
   */
  track(batchId: string, attempt: AttemptAbort): () => void {
    let watched = this.batches.get(batchId);
    if (!watched) {
      const timer = setInterval(() => void this.check(batchId), this.intervalMs);
      // the items themselves keep the process alive; the watch must not
      timer.unref();
      watched = { items: new Set(), timer, checking: false };
      this.batches.set(batchId, watched);
    }
    const entry = watched;
    entry.items.add(attempt);
    return () => {
      entry.items.delete(attempt);
      if (entry.items.size > 0 || this.batches.get(batchId) !== entry) return;
      clearInterval(entry.timer);
      this.batches.delete(batchId);
    };
  }

  /** Number of batches being watched now (for tests). */
  get size(): number {
    return this.batches.size;
  }

  private async check(batchId: string): Promise<void> {
    const watched = this.batches.get(batchId);
    if (!watched || watched.checking) return;
    watched.checking = true;
    let mode;
    try {
      mode = await this.halts.mode(batchId);
    } catch (error) {
      // unknown is not stop: the items keep running and the next tick asks again
      this.logger.debug({ batchId, err: describeError(error) }, 'halt check of running items failed');
      return;
    } finally {
      watched.checking = false;
    }
    if (mode !== HALT_STOP) return;
    // items aborted by an earlier tick stay tracked until their task has wound down
    const running = [...watched.items].filter((attempt) => !attempt.aborted);
    if (running.length === 0) return;
    this.logger.info({ batchId, items: running.length }, 'batch stopped: aborting its running items');
    const reason = new BatchStoppedError(batchId);
    for (const attempt of running) attempt.abort(reason);
  }
}
