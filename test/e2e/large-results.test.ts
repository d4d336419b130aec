import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { allItems, expectAllSucceededOnce, newCluster, type Cluster } from '../helpers/cluster.js';
import type { FanoutProcess } from '../helpers/processes.js';

/**
 * Results over the inline limit never travel through Redis: the worker streams them to
 * PUT …/items/{i}/result and the API records the attempt. With a 1 KiB inline limit, on the
 * in-process worker of `fanout up` and on a separate `fanout worker --api-url`.
 */

// the item repeated on 20,000 lines: 60 kB for a two-letter item
const BIG = 'x=$(cat); yes "$x" | head -n 20000';
const expected = (item: string) => Array(20000).fill(item).join('\n');

describe('e2e: large results', () => {
  let c: Cluster;
  let up: FanoutProcess & { url: string };
  beforeAll(async () => {
    c = newCluster(inject('redisUrl'));
    up = await c.up(['--task', `big=${BIG}`], { FANOUT_INLINE_RESULT_BYTES: '1024' });
    await c.worker([`big-remote=${BIG}`], { FANOUT_INLINE_RESULT_BYTES: '1024', FANOUT_API_URL: up.url });
  });
  afterAll(async () => c?.stopAll());

  for (const task of ['big', 'big-remote']) {
    it(`${task}: every result is streamed to the API, recorded once, and served whole`, { timeout: 90_000 }, async () => {
      const items = ['ab', 'cd', 'ef', 'gh', 'ij'];
      const batch = await c.client.createBatch({ task, items, parallelism: 5, retry: { backoffLimitPerItem: 0 } });
      const done = await c.client.waitForPhase(batch.id, undefined, 60_000);
      expect(done.status.phase).toBe('Succeeded');
      await expectAllSucceededOnce(c.client, batch.id, items.map(expected));
      for (const it of await allItems(c.client, batch.id)) {
        expect(it.resultTruncated).toBe(true);
        expect(it.attempts).toEqual([expect.objectContaining({ outcome: 'succeeded' })]);
      }
      // the leases those items travelled in are settled too: none is later taken for lost
      await new Promise((r) => setTimeout(r, 3500));
      expect(up.output()).not.toMatch(/lease lost|released again/);
      const later = await c.client.getBatch(batch.id);
      expect(later.status.counts).toEqual(done.status.counts);
    });
  }
});
