import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { maxOverlap, newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';

/**
 * Parallelism is the most items of one batch running at once, measured by the task itself
 * (timestamps it writes to files), and no batch may starve another.
 */

// start/end timestamps in ns into $SCRATCH/<batch>.<index>.<attempt>
const STAMP =
  'f="$SCRATCH/$FANOUT_BATCH_ID.$FANOUT_ITEM_INDEX.$FANOUT_ATTEMPT"; echo "start $(date +%s%N)" >> "$f"; sleep 0.2; echo "end $(date +%s%N)" >> "$f"; cat';

function spansOf(c: Cluster, batchId: string): Array<[number, number]> {
  return fs
    .readdirSync(c.scratch)
    .filter((f) => f.startsWith(`${batchId}.`))
    .map((f) => {
      const lines = fs.readFileSync(path.join(c.scratch, f), 'utf8').trim().split('\n');
      const at = (what: string) => Number(lines.find((l) => l.startsWith(what))!.split(' ')[1]) / 1e6;
      return [at('start'), at('end')] as [number, number];
    });
}

describe('e2e: parallelism and fairness', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = newCluster(inject('redisUrl'));
    // room for 8 items at once in the in-process worker, more than any parallelism below
    await c.up(['--task', `stamp=${STAMP}`, '--task', 'slow=sleep 0.25; cat', '--concurrency', '8']);
  });
  afterAll(async () => c?.stopAll());

  it('never runs more items of a batch at once than its parallelism', async () => {
    const items = Array.from({ length: 12 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'stamp', items, parallelism: 2 });
    const done = await c.client.waitForPhase(batch.id);
    expect(done.status.phase).toBe('Succeeded');
    expect((await c.client.results(batch.id)).map((r) => r.result)).toEqual(items);
    const spans = spansOf(c, batch.id);
    expect(spans).toHaveLength(12);
    expect(maxOverlap(spans)).toBe(2);
  });

  it('a wide batch uses its parallelism', async () => {
    const items = Array.from({ length: 12 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'stamp', items, parallelism: 6 });
    expect((await c.client.waitForPhase(batch.id)).status.phase).toBe('Succeeded');
    const overlap = maxOverlap(spansOf(c, batch.id));
    expect(overlap).toBeGreaterThanOrEqual(3);
    expect(overlap).toBeLessThanOrEqual(6);
  });

  it('a small batch submitted after a big one is not starved until the big one finishes', { timeout: 90_000 }, async () => {
    // 128 items x 0.25 s on 8 slots: about 4 s of work. First come, first served would run the
    // small batch only after all of it; the worker's prefetched leases (half the big batch at
    // most) may still go first.
    const big = await c.client.createBatch({ task: 'slow', items: Array.from({ length: 128 }, (_, i) => `big-${i}`), parallelism: 1000 });
    const small = await c.client.createBatch({ task: 'slow', items: ['s0', 's1', 's2'], parallelism: 3 });
    const smallDone = await c.client.waitForPhase(small.id, undefined, 60_000);
    expect(smallDone.status.phase).toBe('Succeeded');
    const bigAtThatTime = await c.client.getBatch(big.id);
    // the small batch finished while a good part of the big one was still to do
    expect(bigAtThatTime.status.counts.succeeded).toBeLessThan(100);
    const bigDone = await c.client.waitForPhase(big.id, undefined, 60_000);
    expect(bigDone.status.phase).toBe('Succeeded');
    expect(Date.parse(smallDone.status.completionTime)).toBeLessThan(Date.parse(bigDone.status.completionTime));
    // leases that waited in the queue longer than a lease time were not taken for lost
    for (const id of [big.id, small.id]) expect((await c.client.results(id)).every((r) => r.attempts === 1)).toBe(true);
  });

  it('two batches submitted back to back both make progress', { timeout: 90_000 }, async () => {
    const a = await c.client.createBatch({ task: 'slow', items: Array.from({ length: 48 }, (_, i) => `a-${i}`), parallelism: 100 });
    const b = await c.client.createBatch({ task: 'slow', items: Array.from({ length: 48 }, (_, i) => `b-${i}`), parallelism: 100 });
    // by the time a quarter of all the work is done, both batches have items done
    await waitUntil('a quarter of the work done', async () => {
      const [x, y] = await Promise.all([c.client.getBatch(a.id), c.client.getBatch(b.id)]);
      return x.status.counts.succeeded + y.status.counts.succeeded >= 24;
    }, 60_000, 50);
    const [x, y] = await Promise.all([c.client.getBatch(a.id), c.client.getBatch(b.id)]);
    expect(x.status.counts.succeeded).toBeGreaterThan(0);
    expect(y.status.counts.succeeded).toBeGreaterThan(0);
    expect((await c.client.waitForPhase(a.id, undefined, 60_000)).status.phase).toBe('Succeeded');
    expect((await c.client.waitForPhase(b.id, undefined, 60_000)).status.phase).toBe('Succeeded');
  });
});
