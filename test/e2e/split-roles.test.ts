import { afterEach, describe, expect, inject, it } from 'vitest';
import { expectAllSucceededOnce, newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';

/**
 * The roles of `fanout up` as separate processes: `fanout api` and `fanout dispatcher` on one
 * SQLite file (WAL, two writers in two processes) and `fanout worker` processes on Redis.
 */

describe('e2e: api, dispatcher and workers as separate processes', () => {
  let c: Cluster;
  afterEach(async () => c?.stopAll());

  async function start(task: string) {
    c = newCluster(inject('redisUrl'));
    const dispatcher = await c.dispatcher();
    await c.api();
    await Promise.all([c.worker([task], { WORKER_NAME: 'w1' }), c.worker([task], { WORKER_NAME: 'w2' })]);
    return dispatcher;
  }

  it('batches submitted concurrently while reports are applied all complete, with no 5xx', { timeout: 120_000 }, async () => {
    await start('up=tr a-z A-Z');
    const batches = Array.from({ length: 5 }, (_, b) => Array.from({ length: 40 }, (_, i) => `b${b}-item${i}`));
    const created = await Promise.all(batches.map((items) => c.client.createBatch({ task: 'up', items, parallelism: 8 })));
    // readers and writers of the API hit the file while the dispatcher writes reports
    const statuses: number[] = [];
    const extras: string[] = [];
    await waitUntil('every batch final', async () => {
      const rs = await Promise.all(created.map((b) => c.client.json('GET', `/v1/batches/${b.id}`)));
      statuses.push(...rs.map((r) => r.status));
      if (extras.length < 20) {
        const extra = await c.client.json('POST', '/v1/batches', { task: 'up', items: ['x'] });
        statuses.push(extra.status);
        extras.push(extra.body.id);
      }
      return rs.every((r) => ['Succeeded', 'Failed', 'Cancelled'].includes(r.body.status.phase));
    }, 90_000, 50);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    for (const [k, b] of created.entries()) {
      expect((await c.client.getBatch(b.id)).status.phase).toBe('Succeeded');
      await expectAllSucceededOnce(c.client, b.id, batches[k].map((s) => s.toUpperCase()));
    }
  });

  it('SIGKILL of the dispatcher: the API keeps answering and accepting, a new dispatcher finishes everything once', { timeout: 120_000 }, async () => {
    const dispatcher = await start('work=sleep 0.2; cat');
    const items = Array.from({ length: 30 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'work', items, parallelism: 4, retry: { backoffLimitPerItem: 0 } });
    await waitUntil('a few items done', async () => (await c.client.getBatch(batch.id)).status.counts.succeeded >= 5, 60_000, 50);
    await dispatcher.kill('SIGKILL');

    // no dispatcher: the API still reads and stores (202 means stored, not dispatched)
    const frozen = await c.client.getBatch(batch.id);
    expect(frozen.status.phase).toBe('Running');
    const later = await c.client.createBatch({ task: 'work', items: ['late-0', 'late-1'] });
    await new Promise((r) => setTimeout(r, 1500));
    const stillFrozen = await c.client.getBatch(batch.id);
    expect(stillFrozen.status.counts.succeeded).toBe(frozen.status.counts.succeeded);
    expect((await c.client.getBatch(later.id)).status.phase).toBe('Pending');

    await c.dispatcher();
    const done = await c.client.waitForPhase(batch.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    const all = await expectAllSucceededOnce(c.client, batch.id, items);
    for (const it of all) expect(it.attempts.map((a: any) => a.outcome)).toEqual(['succeeded']);
    expect((await c.client.waitForPhase(later.id, undefined, 60_000)).status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, later.id, ['late-0', 'late-1']);
  });
});
