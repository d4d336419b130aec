import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import { anyFinishedRuns, dueScheduleIds, DuplicateTickError, pruneHistory, runDueSchedule, syncFinishedRuns } from '../store/schedule-runs.js';
import type { DeletedBatch } from './forget-batches.js';
import type { Quotas } from '../domain/quotas.js';

/**
 * The schedule loop of a dispatcher. About every second it starts the due schedules' batches
 * (one write operation per schedule and tick: see runDueSchedule), notices batches of schedules
 * that finished, and prunes history beyond the limits. Any number of dispatchers may run it on
 * one database: the store decides which of them handles a tick, the others find nothing due.
 * See docs/architecture.md#schedules.
 */
export interface SchedulerOptions {
  store: Store;
  logger: Logger;
  /** wakes the dispatcher for a batch it started or cancelled */
  notify(batchId: string): void;
  /** cleanup after pruned batches were deleted (Redis, blobs, Kubernetes) */
  forget(deleted: DeletedBatch[]): Promise<void>;
  intervalMs?: number;
  /** the server-wide quota defaults: a tick over its tenant's quota is skipped as QuotaExceeded */
  quotaDefaults?: Quotas;
  /** the clock; tests may inject one */
  now?: () => number;
}

export class Scheduler {
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;

  constructor(private readonly o: SchedulerOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs ?? 1000);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass; overlapping calls are dropped (the next interval picks up what is left). */
  async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      const now = (this.o.now ?? Date.now)();
      const touched = new Set<string>();
      for (const id of await this.o.store.read(dueScheduleIds(now))) {
        try {
          const outcome = await this.o.store.write(runDueSchedule(id, now, this.o.quotaDefaults)).catch((err: unknown) => {
            // Another dispatcher recorded this tick first: its run stands.
            if (err instanceof DuplicateTickError) return null;
            throw err;
          });
          if (!outcome) continue;
          for (const b of outcome.cancelled) this.o.notify(b);
          if (outcome.started) this.o.notify(outcome.started);
          this.o.logger.info({ scheduleId: id, tick: new Date(outcome.tick).toISOString(), batchId: outcome.started, skipped: outcome.skipped, cancelled: outcome.cancelled }, 'schedule ticked');
          touched.add(id);
        } catch (err) {
          this.o.logger.warn({ scheduleId: id, err: (err as Error).message }, 'schedule tick failed; retrying');
        }
      }
      // Looked at with a read first: most passes find nothing finished.
      if (await this.o.store.read(anyFinishedRuns())) for (const id of await this.o.store.write(syncFinishedRuns(now))) touched.add(id);
      for (const id of touched) {
        const deleted = await this.o.store.write(pruneHistory(id));
        if (deleted.length > 0) {
          this.o.logger.info({ scheduleId: id, deleted: deleted.map((d) => d.id) }, 'schedule history pruned');
          await this.o.forget(deleted);
        }
      }
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'scheduler pass failed');
    } finally {
      this.running = false;
    }
  }
}
