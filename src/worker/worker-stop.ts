import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { closeRedis, settledBefore, soonerOf, type StopContext } from '../lifecycle/stop-context.js';
import type { Semaphore } from './semaphore.js';

/** after the drain, how long cut items get to report `returned` */
const CUT_REPORT_MS = 1000;
/** how long BullMQ may take to close once no lease runs */
const BULLMQ_CLOSE_MS = 2000;

/** Counts the leases running in this worker and tells when none is left. */
export class LeaseTracker {
  private active = 0;
  private readonly idleWaiters = new Set<() => void>();

  get running(): number {
    return this.active;
  }

  async track(run: () => Promise<void>): Promise<void> {
    this.active++;
    try {
      await run();
    } finally {
      this.active--;
      if (this.active === 0) for (const wake of this.idleWaiters) wake();
    }
  }

  /** Resolves once no lease runs here (BullMQ's close also waits for that, but cannot be cut). */
  ended(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.idleWaiters.delete(wake);
        resolve();
      };
      this.idleWaiters.add(wake);
    });
  }
}

export interface WorkerParts {
  leases: LeaseTracker;
  semaphore: Semaphore;
  /** aborted to cut the running items (they report `returned`) */
  shutdownCut: AbortController;
  redis: Redis;
  reportQueue: Queue;
  listeners: Array<{ worker: Worker; connection: Redis }>;
  logger: Logger;
}

/**
 * The worker's stop once nothing new starts: leases hand back their unstarted items at once and
 * running items get until the drain is over; then they are cut and reported `returned` if Redis
 * is there, left to their lease's expiry if not. BullMQ closes are forced while Redis is down (a
 * graceful one queues QUIT behind offline commands and waits for a reconnection).
 */
export async function stopWorkerParts(p: WorkerParts, ctx: StopContext): Promise<void> {
  // Fetch nothing more, at once and without waiting for the running leases (that wait is the
  // drain below). A lease fetched while stopping would only be handed back, re-released by the
  // dispatcher and fetched here again, over and over until the running items ended.
  for (const { worker } of p.listeners) void worker.pause(true).catch(() => {});
  if (!(await settledBefore(p.leases.ended(), ctx.drain))) {
    const runningItems = p.semaphore.inUse;
    p.shutdownCut.abort();
    const handedBack = p.redis.status === 'ready' && (await settledBefore(p.leases.ended(), AbortSignal.timeout(CUT_REPORT_MS)));
    // their leases expire and the items run again elsewhere (a lost report means the same)
    if (!handedBack) ctx.abandon({ runningItems, unreportedLeases: p.leases.running });
    p.logger.warn({ runningItems, handedBack }, 'shutdown grace over: running items cut');
  }
  const redisUp = [p.redis, ...p.listeners.map((l) => l.connection)].every((c) => c.status === 'ready');
  if (!redisUp) ctx.abandon({ redis: 'unreachable' });
  const bullmqClosed = Promise.all([...p.listeners.map(({ worker }) => worker.close(!redisUp)), p.reportQueue.close()]);
  await settledBefore(bullmqClosed, soonerOf(ctx.drain, BULLMQ_CLOSE_MS));
  await Promise.all([...p.listeners.map(({ connection }) => closeRedis(connection)), closeRedis(p.redis)]);
}
