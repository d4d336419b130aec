import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sleep, useWorkerHarness } from './harness.js';
import { HALT_PAUSE, HALT_STOP, haltKey, taskRegistryKey } from '../../src/runtimes/queue/protocol.js';
import { parseTaskFlag } from '../../src/worker/index.js';

const t = useWorkerHarness({ tempDirPrefix: 'fanout-worker-test-' });

async function lines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}

describe('worker lifecycle', () => {
  it('registers its tasks with a heartbeat entry', async () => {
    const before = Date.now();
    await t.h.worker({ tasks: [parseTaskFlag('rev=rev'), parseTaskFlag('hook=https://example.com/x')] });
    const registry = await t.h.redis.hgetall(taskRegistryKey(t.h.prefix));
    expect(Object.keys(registry).sort()).toEqual(['hook', 'rev']);
    expect(JSON.parse(registry.rev)).toEqual({ kind: 'command', limits: {}, lastSeen: expect.any(Number) });
    // URL tasks slow down on 429/503 with Retry-After by default (the adaptive rate)
    expect(JSON.parse(registry.hook)).toEqual({ kind: 'url', limits: { adaptive: true }, lastSeen: expect.any(Number) });
    expect(JSON.parse(registry.rev).lastSeen).toBeGreaterThanOrEqual(before);
  });

  it('returns every item of a halted batch without running it', async () => {
    const ran = join(t.dir, 'ran');
    await t.h.worker({ tasks: [{ kind: 'command', name: 'mark', command: `echo x >> ${ran}` }] });
    await t.h.redis.set(haltKey(t.h.prefix, 'halted'), HALT_STOP);
    const lease = await t.h.lease('mark', ['a', 'b', 'c'], { batchId: 'halted' });
    const items = await t.h.waitForItems(3, lease.leaseId);
    expect(items.map((item) => item.outcome)).toEqual(['returned', 'returned', 'returned']);
    expect(items[0].startedAt).toBeUndefined();
    expect(await lines(ran)).toEqual([]);
  });

  it('stops starting items once the halt key appears mid-lease', async () => {
    const ran = join(t.dir, 'ran');
    await t.h.worker({
      concurrency: 1,
      tasks: [{ kind: 'command', name: 'mark', command: `echo $FANOUT_ITEM_INDEX >> ${ran}; sleep 0.5` }],
    });
    const lease = await t.h.lease('mark', ['a', 'b', 'c', 'd'], { batchId: 'halt-later' });
    await waitFor(async () => (await lines(ran)).length === 1);
    // pause: the running item finishes (stop would abort it, see halt.test.ts)
    await t.h.redis.set(haltKey(t.h.prefix, 'halt-later'), HALT_PAUSE);
    const items = await t.h.waitForItems(4, lease.leaseId);
    expect(items.map((item) => item.outcome)).toEqual(['succeeded', 'returned', 'returned', 'returned']);
    expect(await lines(ran)).toEqual(['0']);
  });

  it('close() finishes the running item, returns the rest, then resolves done', async () => {
    const ran = join(t.dir, 'ran');
    const worker = await t.h.worker({
      concurrency: 1,
      tasks: [{ kind: 'command', name: 'slow', command: `echo $FANOUT_ITEM_INDEX >> ${ran}; sleep 1; echo finished` }],
    });
    const lease = await t.h.lease('slow', ['a', 'b', 'c']);
    await waitFor(async () => (await lines(ran)).length === 1);
    const closedAt = Date.now();
    await worker.close();
    const closeTook = Date.now() - closedAt;
    await worker.done;
    const items = await t.h.items(lease.leaseId);
    expect(items.map((item) => [item.i, item.outcome, item.result])).toEqual([
      [0, 'succeeded', 'finished'],
      [1, 'returned', undefined],
      [2, 'returned', undefined],
    ]);
    expect(closeTook).toBeGreaterThan(500);
    expect(await lines(ran)).toEqual(['0']);
    // the lease job completed and was removed: nothing left to hand to another worker
    expect(await t.h.queue('slow').getJobCounts('active', 'waiting', 'failed', 'completed')).toEqual({
      active: 0, waiting: 0, failed: 0, completed: 0,
    });
  });

  it('never runs more items at once than its concurrency, across leases', async () => {
    const log = join(t.dir, 'log');
    const command = `echo "s $(date +%s%N)" >> ${log}; sleep 0.2; echo "e $(date +%s%N)" >> ${log}`;
    await t.h.worker({ concurrency: 3, tasks: [{ kind: 'command', name: 'overlap', command }] });
    const a = await t.h.lease('overlap', Array.from({ length: 6 }, (_, k) => k), { batchId: 'ba' });
    const b = await t.h.lease('overlap', Array.from({ length: 6 }, (_, k) => k), { batchId: 'bb' });
    await t.h.waitForItems(6, a.leaseId);
    await t.h.waitForItems(6, b.leaseId);
    const events = (await lines(log))
      .map((line) => line.split(' '))
      .map(([kind, at]) => ({ delta: kind === 's' ? 1 : -1, at: BigInt(at) }))
      .sort((x, y) => (x.at === y.at ? x.delta - y.delta : x.at < y.at ? -1 : 1));
    expect(events).toHaveLength(24);
    let running = 0;
    let peak = 0;
    for (const event of events) {
      running += event.delta;
      peak = Math.max(peak, running);
    }
    expect(peak).toBe(3);
    const all = [...(await t.h.items(a.leaseId)), ...(await t.h.items(b.leaseId))];
    expect(all.every((item) => item.outcome === 'succeeded')).toBe(true);
  });

  it('reports progress of a long lease in several reports, each item once', async () => {
    await t.h.worker({ concurrency: 1, tasks: [{ kind: 'command', name: 'tick', command: 'sleep 0.4; echo $FANOUT_ITEM_INDEX' }] });
    const lease = await t.h.lease('tick', ['a', 'b', 'c']);
    await t.h.waitForItems(1, lease.leaseId);
    const early = await t.h.items(lease.leaseId);
    expect(early.length).toBeLessThan(3);
    const items = await t.h.waitForItems(3, lease.leaseId);
    expect(items.map((item) => item.result)).toEqual(['0', '1', '2']);
    const reports = await t.h.reports(lease.leaseId);
    expect(reports.length).toBeGreaterThanOrEqual(2);
    for (const report of reports) {
      expect(report.id).not.toContain(':');
      expect(report.id.startsWith(`${lease.leaseId}.`)).toBe(true);
      expect(report.data.batchId).toBe(lease.batchId);
    }
    const job = await t.h.reportQueue.getJob(reports[0].id);
    expect(job?.opts).toMatchObject({ attempts: 5, removeOnComplete: true, removeOnFail: 1000 });
  });
});
