import os from 'node:os';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { expectAllSucceededOnce, newCluster, scratchFiles, waitUntil, type Cluster } from '../helpers/cluster.js';
import type { FanoutProcess } from '../helpers/processes.js';

/**
 * Leases (2 s here) against slow and frozen workers: a live worker renews the lease of an item
 * that takes longer than the lease, and a frozen worker (SIGSTOP) loses it to another worker; when
 * it wakes up, its late report must not record a second result.
 */

// one marker per execution: $SCRATCH/run.<batch>.<index>.<worker>.<pid>
const MARK = 'touch "$SCRATCH/run.$FANOUT_BATCH_ID.$FANOUT_ITEM_INDEX.$WORKER_NAME.$$"';
const workerName = (p: FanoutProcess) => `${os.hostname()}.${p.child.pid}`;
const runs = (c: Cluster, batchId: string) => scratchFiles(c, `run.${batchId}.`).map((f) => ({ index: Number(f.split('.')[2]), worker: f.split('.')[3] }));

describe('faults: slow and frozen workers', () => {
  let c: Cluster;
  let frozen: FanoutProcess | undefined;
  afterEach(async () => {
    frozen?.child.kill('SIGCONT');
    frozen = undefined;
    await c?.stopAll();
  });

  it('an item three times longer than the lease runs once: the live worker keeps renewing it', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    await c.up(['--task', 'other=true']);
    const task = `long=${MARK}; sleep 6; cat`;
    await Promise.all([c.worker([task], { WORKER_NAME: 'w1' }), c.worker([task], { WORKER_NAME: 'w2' })]);
    const items = ['a', 'b', 'c', 'd'];
    const batch = await c.client.createBatch({ task: 'long', items, parallelism: 4, retry: { backoffLimitPerItem: 0 } });
    const done = await c.client.waitForPhase(batch.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, batch.id, items);
    // executed once each: no other worker took a lease that was still being renewed
    expect(runs(c, batch.id).map((r) => r.index).sort()).toEqual([0, 1, 2, 3]);
  });

  it('a worker frozen past its lease loses its items to another; its late report records nothing twice', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    const up = await c.up(['--task', 'other=true']);
    const task = `slow=${MARK}; sleep 1; cat`;
    const w1 = await c.worker([task], { WORKER_NAME: 'w1' });
    const items = Array.from({ length: 8 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'slow', items, parallelism: 4, retry: { backoffLimitPerItem: 0 } });
    await waitUntil('w1 running items', () => runs(c, batch.id).some((r) => r.worker === 'w1'), 30_000, 20);

    // the node process stops; its shell children finish, but nobody renews or reports
    w1.child.kill('SIGSTOP');
    frozen = w1;
    const w2 = await c.worker([task], { WORKER_NAME: 'w2' });
    await waitUntil('w2 re-running what w1 held', () => {
      const onW1 = new Set(runs(c, batch.id).filter((r) => r.worker === 'w1').map((r) => r.index));
      return runs(c, batch.id).some((r) => r.worker === 'w2' && onW1.has(r.index));
    }, 60_000, 50);
    w1.child.kill('SIGCONT');
    frozen = undefined;

    const done = await c.client.waitForPhase(batch.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    // give w1's late reports time to arrive, then check nothing changed and nothing doubled
    await new Promise((r) => setTimeout(r, 3000));
    const all = await expectAllSucceededOnce(c.client, batch.id, items);
    for (const it of all) {
      expect(it.attempts).toHaveLength(1);
      expect([workerName(w1), workerName(w2)]).toContain(it.attempts[0].worker);
    }
    expect((await c.client.getBatch(batch.id)).status.counts).toEqual(done.status.counts);
    expect(up.output()).not.toMatch(/"level":50/);
    // w1 is still a working worker afterwards
    const next = await c.client.createBatch({ task: 'slow', items: ['after'], parallelism: 1 });
    expect((await c.client.waitForPhase(next.id, undefined, 60_000)).status.phase).toBe('Succeeded');
    expect(w1.child.exitCode).toBeNull();
  });
});
