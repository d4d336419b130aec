import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectAllSucceededOnce, newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

/**
 * Redis is a work cache, never the source of truth: restarted without persistence or flushed
 * mid-batch, the dispatcher re-releases every non-final item from the store. This file has its own
 * redis-server, since it kills and flushes it.
 */

const TASK = ['--task', 'work=sleep 0.3; cat'];

describe('faults: Redis loses its data', () => {
  let redis: TestRedis;
  let c: Cluster;
  let down = false;
  const killRedis = async () => {
    await redis.kill();
    down = true;
  };
  // start() spawns a new redis-server: only when the last one is down, or it would leak one
  const startRedis = async () => {
    if (!down) return;
    await redis.start();
    down = false;
  };
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterEach(async () => {
    await c?.stopAll();
    await startRedis();
  });
  afterAll(async () => redis?.stop());

  /** `separate`: the items run on a `fanout worker` process, not in `fanout up`. */
  async function midBatch(n: number, parallelism: number, workers: 'in-process' | 'separate') {
    c = newCluster(redis.url);
    const up = await c.up(workers === 'separate' ? ['--task', 'other=true'] : TASK);
    if (workers === 'separate') await c.worker([TASK[1]]);
    const items = Array.from({ length: n }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'work', items, parallelism });
    await waitUntil('a few items done', async () => (await c.client.getBatch(batch.id)).status.counts.succeeded >= 5, 60_000, 50);
    return { batch, items, up };
  }

  it('redis-server killed and restarted empty on the same port: the batch completes exactly once', { timeout: 120_000 }, async () => {
    const { batch, items, up } = await midBatch(30, 4, 'separate');
    await killRedis();
    // the API keeps answering from the store while Redis is down
    const during = await c.client.getBatch(batch.id);
    expect(during.status.counts.total).toBe(30);
    await new Promise((r) => setTimeout(r, 1000));
    await startRedis();

    const done = await c.client.waitForPhase(batch.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    const all = await expectAllSucceededOnce(c.client, batch.id, items);
    expect(up.output()).toMatch(/redis lost its data/);
    // the loss cost no failures: items in flight were handed back, not failed
    for (const it of all) expect(it.attempts.filter((a: any) => a.outcome === 'failed')).toEqual([]);
  });

  it('FLUSHALL mid-batch: the batch completes exactly once', { timeout: 120_000 }, async () => {
    const { batch, items, up } = await midBatch(30, 4, 'in-process');
    const admin = new Redis(redis.url);
    try {
      await admin.flushall();
    } finally {
      admin.disconnect();
    }
    const done = await c.client.waitForPhase(batch.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    const all = await expectAllSucceededOnce(c.client, batch.id, items);
    expect(up.output()).toMatch(/redis lost its data/);
    for (const it of all) expect(it.attempts.filter((a: any) => a.outcome === 'failed')).toEqual([]);
  });

  it('a batch submitted while Redis is down runs once Redis is back', { timeout: 120_000 }, async () => {
    c = newCluster(redis.url);
    await c.up(TASK);
    await killRedis();
    const items = ['a', 'b', 'c', 'd'];
    // the registry of tasks lives in Redis: while it is down the API cannot check the task
    const r = await c.client.json('POST', '/v1/batches', { task: 'work', items });
    expect(r.status).toBe(202);
    await new Promise((res) => setTimeout(res, 1000));
    await startRedis();
    const done = await c.client.waitForPhase(r.body.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, r.body.id, items);
  });
});
