import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { allItems, newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';
import { isAlive } from '../helpers/processes.js';

/** activeDeadlineSeconds (the batch) and itemTimeoutSeconds (each attempt), on real processes. */

describe('e2e: deadlines and timeouts', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = newCluster(inject('redisUrl'));
    await c.up([
      '--task', 'crawl=sleep 1; cat',
      // records its process group so the test can tell it was killed, then sleeps far too long
      '--task', 'hang=echo $$ > "$SCRATCH/pid.$FANOUT_BATCH_ID.$FANOUT_ITEM_INDEX.$FANOUT_ATTEMPT"; sleep 10; cat',
    ]);
  });
  afterAll(async () => c?.stopAll());

  it('activeDeadlineSeconds fails a slow batch with DeadlineExceeded and cancels what is left', async () => {
    const items = Array.from({ length: 20 }, (_, i) => `page-${i}`);
    const batch = await c.client.createBatch({ task: 'crawl', items, parallelism: 2, activeDeadlineSeconds: 2 });
    const done = await c.client.waitForPhase(batch.id, undefined, 30_000);
    expect(done.status.phase).toBe('Failed');
    expect(done.status.conditions.find((x: any) => x.type === 'Failed')).toMatchObject({ status: 'True', reason: 'DeadlineExceeded' });
    const elapsed = Date.parse(done.status.completionTime) - Date.parse(done.status.startTime);
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    expect(elapsed).toBeLessThan(8000);
    const { counts } = done.status;
    expect(counts.pending + counts.running).toBe(0);
    expect(counts.succeeded).toBeLessThan(20);
    expect(counts.cancelled).toBe(20 - counts.succeeded - counts.failed);
    expect(counts.cancelled).toBeGreaterThan(0);
    // nothing moves after the deadline: late reports of cancelled items are ignored
    await new Promise((r) => setTimeout(r, 1500));
    expect((await c.client.getBatch(batch.id)).status.counts).toEqual(counts);
  });

  it('itemTimeoutSeconds kills a hung attempt and records the Timeout condition', async () => {
    const batch = await c.client.createBatch({
      task: 'hang',
      items: ['x', 'y'],
      itemTimeoutSeconds: 1,
      retry: { backoffLimitPerItem: 1, backoffSeconds: 0 },
    });
    const done = await c.client.waitForPhase(batch.id, undefined, 40_000);
    expect(done.status.phase).toBe('Failed');
    expect(done.status.failedIndexes).not.toBe('');
    const items = await allItems(c.client, batch.id);
    for (const it of items) {
      expect(it.status).toBe('failed');
      expect(it.reason).toBe('BackoffLimitExceeded');
      expect(it.attempts.map((a: any) => [a.attempt, a.outcome, a.condition])).toEqual([
        [1, 'failed', 'Timeout'],
        [2, 'failed', 'Timeout'],
      ]);
      for (const a of it.attempts) {
        expect(a.error).toMatch(/timed out/);
        // killed after about a second, not after the 10 s sleep
        expect(Date.parse(a.finishedAt) - Date.parse(a.startedAt)).toBeLessThan(5000);
      }
    }
    // the shell and its sleep were killed, not left behind
    const pids = fs.readdirSync(c.scratch).filter((f) => f.startsWith(`pid.${batch.id}.`));
    expect(pids).toHaveLength(4);
    for (const f of pids) {
      const pid = Number(fs.readFileSync(`${c.scratch}/${f}`, 'utf8'));
      await waitUntil(`process group ${pid} gone`, () => !isAlive(-pid), 5000);
    }
  });

  it('a FailItem rule on the Timeout condition stops retrying a hung item', async () => {
    const batch = await c.client.createBatch({
      task: 'hang',
      items: ['z'],
      itemTimeoutSeconds: 1,
      retry: { backoffLimitPerItem: 0, backoffSeconds: 0, rules: [{ action: 'FailItem', onConditions: [{ type: 'Timeout' }] }] },
    });
    const done = await c.client.waitForPhase(batch.id, undefined, 30_000);
    expect(done.status.phase).toBe('Failed');
    const [item] = await allItems(c.client, batch.id);
    expect(item.reason).toBe('FailItemRule');
    expect(item.attempts).toEqual([expect.objectContaining({ outcome: 'failed', condition: 'Timeout', decision: 'FailItemRule' })]);
  });
});
