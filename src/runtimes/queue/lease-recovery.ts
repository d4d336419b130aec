import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ItemReport } from '../../contracts/item-report.js';
import { activeBatchIds } from '../../store/batch-queries.js';
import type { Store } from '../../store/store.js';
import { leasesOf, markLeaseMissing } from '../../store/leases.js';
import { applyReports } from '../../store/reports.js';
import { getSetting, putSetting } from '../../store/settings.js';
import { epochKey, REPORT_QUEUE } from './protocol.js';
import type { RedisSide } from './redis-side.js';

/**
 * Finding work Redis no longer holds, for the queue runtime's resync: Redis that lost its data
 * (every outstanding lease is handed back, no attempt counted), and single leases whose job is
 * gone while the store still waits for them (their items fail with condition `Disruption`).
 * Redis as a cache of work: docs/architecture.md#redis-is-a-cache.
 */
export interface LeaseRecoveryDeps {
  store: Store;
  redis: Redis;
  side: RedisSide;
  prefix: string;
  logger: Logger;
  leaseMs: number;
  resyncMs: number;
}

export class LeaseRecovery {
  private epoch: string | null = null;

  constructor(private readonly d: LeaseRecoveryDeps) {}

  /**
   * Redis lost its data when the epoch it holds differs from the one the store remembers. Then
   * every outstanding lease is handed back (not counted as an attempt) and released again.
   * Returns the active batches to reconcile after such a loss, or null when Redis kept its data.
   */
  async checkEpoch(): Promise<string[] | null> {
    const inRedis = await this.d.redis.get(epochKey(this.d.prefix));
    const remembered = this.epoch ?? (await this.d.store.read(getSetting('redis-epoch')));
    if (inRedis !== null && inRedis === remembered) {
      this.epoch = inRedis;
      return null;
    }
    const fresh = randomBytes(8).toString('hex');
    let returned = 0;
    const batches = await this.d.store.read(activeBatchIds());
    for (const batchId of batches) {
      for (const lease of await this.d.store.read(leasesOf(batchId))) {
        returned += await this.returnLease(lease.batchId, lease.id, JSON.parse(lease.outstanding) as [number, number][]);
      }
    }
    await this.d.store.write(putSetting('redis-epoch', fresh));
    await this.d.redis.set(epochKey(this.d.prefix), fresh);
    this.epoch = fresh;
    if (remembered !== null) this.d.logger.warn({ returned }, 'redis lost its data: released outstanding items again');
    return batches;
  }

  /** Hands a lease's outstanding items back to pending without counting an attempt. */
  async returnLease(batchId: string, leaseId: string, outstanding: [number, number][]): Promise<number> {
    const items: ItemReport[] = outstanding.map(([i, a]) => ({ i, a, outcome: 'returned' }));
    return (await this.d.store.write(applyReports(batchId, leaseId, items))).applied;
  }

  /**
   * Reports waiting in Redis: while there are some, a lease missing from Redis may just be done.
   * Delayed ones count too: a report whose store write failed waits there for its retry (BullMQ's
   * backoff, or parked by the dispatcher while the database is unreachable).
   */
  async reportBacklog(): Promise<number> {
    const key = `${this.d.prefix}:${REPORT_QUEUE}`;
    const [waiting, active, delayed] = await Promise.all([
      this.d.redis.llen(`${key}:wait`),
      this.d.redis.llen(`${key}:active`),
      this.d.redis.zcard(`${key}:delayed`),
    ]);
    return waiting + active + delayed;
  }

  /**
   * A lease the store still has but Redis does not is settled once it stays missing for a whole
   * resync with no reports waiting to be applied:
   * - its job `failed` (BullMQ gave up after the workers holding it died): the outstanding items
   *   fail with the `Disruption` condition, which the rules may `Ignore`;
   * - its job does not exist (the dispatcher died between committing the release and adding it
   *   to Redis, or a report was lost): the items are handed back without counting an attempt,
   *   since no worker ever failed them.
   */
  async checkLeases(batchId: string, now: number): Promise<void> {
    for (const lease of await this.d.store.read(leasesOf(batchId))) {
      if (now - lease.createdAt < this.d.leaseMs) continue;
      const state = await this.d.side.workQueue(lease.task).getJobState(lease.id);
      const present = state !== 'unknown' && state !== 'failed' && state !== 'completed';
      if (present) {
        if (lease.missingSince !== null) await this.d.store.write(markLeaseMissing(lease.id, null));
        continue;
      }
      if (lease.missingSince === null) {
        await this.d.store.write(markLeaseMissing(lease.id, now));
        continue;
      }
      if (now - lease.missingSince < this.d.resyncMs) continue;
      const outstanding = JSON.parse(lease.outstanding) as [number, number][];
      if (state !== 'failed') {
        const returned = await this.returnLease(batchId, lease.id, outstanding);
        this.d.logger.warn({ batchId, leaseId: lease.id, returned }, 'lease never reached a worker or its report was lost: released again');
        continue;
      }
      const items: ItemReport[] = outstanding.map(([i, a]) => ({
        i,
        a,
        outcome: 'failed',
        condition: 'Disruption',
        error: 'the workers running this item were lost: its lease expired too often and was given up',
        finishedAt: now,
      }));
      await this.d.store.write(applyReports(batchId, lease.id, items, now));
      this.d.logger.warn({ batchId, leaseId: lease.id, items: items.length }, 'lease lost');
    }
  }
}
