import { afterEach, describe, expect, inject, it } from 'vitest';
import { expectAllSucceededOnce, newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';

/**
 * `fanout up` (API + dispatcher + in-process workers) SIGKILLed and restarted on the same SQLite
 * file and the same Redis, which survives it: the store is the source of truth, the dispatcher
 * converges again, and every item ends up recorded exactly once.
 */

const TASK = ['--task', 'work=sleep 0.3; cat'];

describe('faults: the whole service', () => {
  let c: Cluster;
  afterEach(async () => c?.stopAll());

  it('SIGKILL of fanout up mid-batch, restart on the same data and Redis: the batch completes exactly once', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    const first = await c.up(TASK);
    const items = Array.from({ length: 30 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'work', items, parallelism: 4, retry: { backoffLimitPerItem: 0 } });

    const before = await waitUntil('a few items done', async () => {
      const b = await c.client.getBatch(batch.id);
      return b.status.counts.succeeded >= 5 ? b : null;
    }, 60_000, 50);
    await first.kill('SIGKILL');
    expect(before.status.counts.succeeded).toBeLessThan(30);

    await c.up(TASK);
    const after = await c.client.getBatch(batch.id);
    // what was recorded before the crash is still there
    expect(after.status.counts.succeeded).toBeGreaterThanOrEqual(before.status.counts.succeeded);
    const done = await c.client.waitForPhase(batch.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.completedIndexes).toBe('0-29');
    const all = await expectAllSucceededOnce(c.client, batch.id, items);
    // items cut off by the crash were run again under the same attempt, with no failure recorded
    // (backoffLimitPerItem 0 would have failed them)
    for (const it of all) expect(it.attempts.map((a: any) => a.outcome)).toEqual(['succeeded']);
  });

  it('202 means stored: SIGKILL right after the answer, the restarted service runs the batch', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    const first = await c.up(TASK);
    const items = Array.from({ length: 8 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'work', items, parallelism: 8 });
    await first.kill('SIGKILL');

    await c.up(TASK);
    const done = await c.client.waitForPhase(batch.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, batch.id, items);
  });

  it('two restarts in a row mid-batch still converge without duplicates', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    let proc = await c.up(TASK);
    const items = Array.from({ length: 24 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'work', items, parallelism: 6 });
    for (const threshold of [4, 12]) {
      await waitUntil(`${threshold} items done`, async () => (await c.client.getBatch(batch.id)).status.counts.succeeded >= threshold, 60_000, 50);
      await proc.kill('SIGKILL');
      proc = await c.up(TASK);
    }
    const done = await c.client.waitForPhase(batch.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, batch.id, items);
  });
});
