import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { HALT_STOP, type HaltMode } from '../../contracts/halt.js';
import type { DeletedBatch } from '../../store/batch-queries.js';
import { haltKey, taskRegistryKey, workQueueName } from './protocol.js';
import { currentTaskRate } from './task-limiter.js';
import type { TaskLimits } from '../../domain/task-limits.js';

/** A task's entry in the registry workers keep (src/worker/task-registry.ts). */
export interface RegisteredTask {
  kind: string;
  limits?: TaskLimits;
  lastSeen: number;
}

/**
 * What the API and the dispatcher do to Redis besides adding leases: halt flags that tell
 * workers to hand items back, the task registry workers write, and the work queues by task.
 * Redis is a cache of work; everything here can be rebuilt from the store.
 */
export class RedisSide {
  private readonly queues = new Map<string, Queue>();

  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {}

  /** The BullMQ queue of one task (created on first use, shared afterwards). */
  workQueue(task: string): Queue {
    let q = this.queues.get(task);
    if (!q) {
      q = new Queue(workQueueName(task), { connection: this.redis, prefix: this.prefix });
      // A Queue re-emits connection errors; they surface through the calls that fail.
      q.on('error', () => {});
      this.queues.set(task, q);
    }
    return q;
  }

  /**
   * Tells workers not to start more items of these batches, and with `stop` to abort the ones
   * running (kept a day, by then the leases are long gone).
   */
  async halt(batchIds: string[], mode: HaltMode = HALT_STOP): Promise<void> {
    if (batchIds.length === 0) return;
    const m = this.redis.multi();
    for (const id of batchIds) m.set(haltKey(this.prefix, id), mode, 'EX', 86_400);
    await m.exec();
  }

  async unhalt(batchId: string): Promise<void> {
    await this.redis.del(haltKey(this.prefix, batchId));
  }

  /** Removes leases still waiting in Redis (best effort: a lease being worked is halted instead). */
  async removeLeases(task: string, leaseIds: string[]): Promise<void> {
    const q = this.workQueue(task);
    await Promise.all(leaseIds.map((id) => q.remove(id).catch(() => 0)));
  }

  /**
   * After a delete committed (DELETE /v1/batches, schedule history): halts the batches and
   * removes their leases still waiting. Never throws: the delete stands whatever Redis says, and
   * what Redis still holds of a deleted batch changes nothing in the store (only logged).
   */
  async forgetDeleted(deleted: DeletedBatch[], logger: Logger): Promise<void> {
    try {
      await this.halt(deleted.map((d) => d.id));
      for (const d of deleted) if (d.task) await this.removeLeases(d.task, d.leaseIds);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'could not clean deleted batches from redis; their leases will be handed back');
    }
  }

  /** Tasks that some worker has registered within `maxAgeMs`. */
  async registeredTasks(maxAgeMs: number, now = Date.now()): Promise<Map<string, RegisteredTask>> {
    const raw = await this.redis.hgetall(taskRegistryKey(this.prefix));
    const out = new Map<string, RegisteredTask>();
    for (const [name, json] of Object.entries(raw)) {
      try {
        const v = JSON.parse(json) as RegisteredTask;
        if (now - v.lastSeen <= maxAgeMs) out.set(name, v);
      } catch {
        // A malformed registry entry is ignored: the worker rewrites it on its next heartbeat.
      }
    }
    return out;
  }

  /**
   * The rate each rate-limited task's starts are held to now (its maxPerSecond, or the adaptive
   * rate after a slow-down), for /metrics; tasks without a rate are left out.
   */
  async taskRates(maxAgeMs: number): Promise<{ task: string; perSecond: number }[]> {
    const out: { task: string; perSecond: number }[] = [];
    for (const [task, registered] of await this.registeredTasks(maxAgeMs)) {
      const limits = registered.limits ?? {};
      if (limits.maxPerSecond === undefined && !limits.adaptive) continue;
      const perSecond = await currentTaskRate(this.redis, this.prefix, task, limits.maxPerSecond);
      if (perSecond !== undefined) out.push({ task, perSecond });
    }
    return out;
  }

  /** Waiting + delayed + active leases across the known work queues (for /metrics). */
  async queueDepth(tasks: Iterable<string>): Promise<number> {
    let n = 0;
    for (const t of tasks) {
      const c = await this.workQueue(t).getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      n += Object.values(c).reduce((a, b) => a + b, 0);
    }
    return n;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
