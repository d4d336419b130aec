import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem, waitUntil } from './support.js';

/** POST …/suspend, /resume, /cancel, /retry: what runs afterwards, phases, and refused transitions. */
describe('batch actions', () => {
  let svc: TestService;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-actions-'));
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      tasks: [
        // Leaves a mark when an item starts, so the test sees what started and when.
        `slow=touch "${dir}/$FANOUT_BATCH_ID-started-$FANOUT_ITEM_INDEX"; sleep 2; cat`,
        // Succeeds only once the test has created the ok-file named by the item's payload (so the
        // test can create it before the batch exists and a fast worker cannot race it); logs every run.
        `flaky=echo "$FANOUT_ITEM_INDEX" >> "${dir}/$FANOUT_BATCH_ID-runs"; test -f "${dir}/ok-$(cat)" && echo "ok-$FANOUT_ITEM_INDEX"`,
      ],
    });
  });
  afterAll(async () => {
    await svc?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Indexes of the items of batch `id` that have started so far. */
  const started = (id: string) =>
    fs
      .readdirSync(dir)
      .filter((f) => f.startsWith(`${id}-started-`))
      .map((f) => Number(f.split('-').pop()))
      .sort((a, b) => a - b);
  const action = (id: string, name: string) => svc.client.json('POST', `/v1/batches/${id}/${name}`);

  it('suspend: no new item starts, phase Suspended; resume: the batch completes', async () => {
    const b = await svc.client.createBatch({ task: 'slow', items: ['a', 'b', 'c', 'd'], parallelism: 1 });
    await waitUntil(async () => started(b.id).length > 0, 'the first item to start');
    const s = await action(b.id, 'suspend');
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    await svc.client.waitForPhase(b.id, ['Suspended'], 15_000);
    // Anything that was starting when the suspend landed has left its mark by now.
    await sleep(500);
    const atSuspend = started(b.id);
    expect(atSuspend.length).toBeLessThan(4);
    // Longer than two items take: with the batch running, at least one more would have started.
    await sleep(5000);
    expect(started(b.id)).toEqual(atSuspend);
    const held = await svc.client.getBatch(b.id);
    expect(held.status.phase).toBe('Suspended');
    expect(held.status.counts.running).toBe(0);
    await expectProblem(await svc.client.request('POST', `/v1/batches/${b.id}/retry`), 409);

    const r = await action(b.id, 'resume');
    expect(r.status).toBe(200);
    expect(r.body.status.phase).not.toBe('Suspended');
    const done = await svc.client.waitForPhase(b.id, undefined, 60_000);
    expect(done.status.phase).toBe('Succeeded');
    expect(started(b.id)).toEqual([0, 1, 2, 3]);
    expect((await svc.client.results(b.id)).map((x) => x.result)).toEqual(['a', 'b', 'c', 'd']);
  }, 90_000);

  it('resume on a batch that is not suspended → 409', async () => {
    const b = await svc.client.createBatch({ task: 'slow', items: ['a'], parallelism: 1 });
    await expectProblem(await svc.client.request('POST', `/v1/batches/${b.id}/resume`), 409);
    await svc.client.waitForPhase(b.id);
  });

  it('cancel: phase Cancelled, cancelled items in counts and results, nothing more starts; no way back', async () => {
    const b = await svc.client.createBatch({ task: 'slow', items: ['a', 'b', 'c', 'd', 'e', 'f'], parallelism: 1 });
    await waitUntil(async () => started(b.id).length > 0, 'the first item to start');
    const c = await action(b.id, 'cancel');
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    const done = await svc.client.waitForPhase(b.id, ['Cancelled'], 15_000);
    expect(done.status.counts.cancelled).toBeGreaterThan(0);
    expect(done.status.counts.pending + done.status.counts.running).toBe(0);
    expect(done.status.counts.total).toBe(6);
    expect(done.status.completionTime).not.toBeNull();
    await sleep(500);
    const atCancel = started(b.id);
    expect(atCancel.length).toBeLessThan(6);
    await sleep(4500);
    expect(started(b.id)).toEqual(atCancel);
    expect((await svc.client.getBatch(b.id)).status.phase).toBe('Cancelled');

    const results = await svc.client.results(b.id);
    expect(results).toHaveLength(6);
    const cancelled = results.filter((x) => x.status === 'cancelled');
    expect(cancelled.length).toBe(done.status.counts.cancelled);
    for (const x of cancelled) expect(x.result).toBeNull();
    // Items that never started are among the cancelled ones.
    for (const x of results) if (!atCancel.includes(x.index)) expect(x.status).toBe('cancelled');

    for (const a of ['resume', 'retry', 'suspend', 'cancel']) {
      const p = await expectProblem(await svc.client.request('POST', `/v1/batches/${b.id}/${a}`), 409);
      expect(p.detail).toMatch(/Cancelled|cancel/);
    }
    expect((await svc.client.getBatch(b.id)).status.phase).toBe('Cancelled');
  }, 60_000);

  it('retry on a Failed batch re-runs only the failed items', async () => {
    const tag = `retry-${Date.now()}`;
    for (const i of [0, 2]) fs.writeFileSync(`${dir}/ok-${tag}-${i}`, '');
    const items = [0, 1, 2, 3].map((i) => `${tag}-${i}`);
    const b = await svc.client.createBatch({ task: 'flaky', items, retry: { backoffLimitPerItem: 0 } });
    const failed = await svc.client.waitForPhase(b.id);
    expect(failed.status.phase).toBe('Failed');
    expect(failed.status.failedIndexes).toBe('1,3');
    const runs = () => fs.readFileSync(`${dir}/${b.id}-runs`, 'utf8').split('\n').filter(Boolean).map(Number).sort();
    expect(runs()).toEqual([0, 1, 2, 3]);

    for (const i of [1, 3]) fs.writeFileSync(`${dir}/ok-${tag}-${i}`, '');
    const r = await action(b.id, 'retry');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(['Pending', 'Running']).toContain(r.body.status.phase);
    expect(r.body.status.counts.failed).toBe(0);
    const done = await svc.client.waitForPhase(b.id);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.completedIndexes).toBe('0-3');
    expect(done.status.failedIndexes).toBe('');
    expect(runs()).toEqual([0, 1, 1, 2, 3, 3]);

    const results = await svc.client.results(b.id);
    expect(results.map((x) => [x.status, x.result, x.attempts])).toEqual([
      ['succeeded', 'ok-0', 1],
      ['succeeded', 'ok-1', 2],
      ['succeeded', 'ok-2', 1],
      ['succeeded', 'ok-3', 2],
    ]);
    const item1 = (await svc.client.json('GET', `/v1/batches/${b.id}/items/1`)).body;
    expect(item1.attempts.map((a: any) => [a.outcome, a.exitCode])).toEqual([
      ['failed', 1],
      ['succeeded', 0],
    ]);
    const item0 = (await svc.client.json('GET', `/v1/batches/${b.id}/items/0`)).body;
    expect(item0.attempts).toHaveLength(1);
  }, 60_000);

  it('retry on a Succeeded batch with no failures → 409, and nothing re-runs', async () => {
    const item = `succeeded-${Date.now()}`;
    fs.writeFileSync(`${dir}/ok-${item}`, '');
    const b = await svc.client.createBatch({ task: 'flaky', items: [item] });
    await svc.client.waitForPhase(b.id);
    const before = await svc.client.getBatch(b.id);
    expect(before.status.phase).toBe('Succeeded');
    const p = await expectProblem(await svc.client.request('POST', `/v1/batches/${b.id}/retry`), 409);
    expect(p.detail).toMatch(/no failed items/);
    await sleep(1500);
    expect(fs.readFileSync(`${dir}/${b.id}-runs`, 'utf8').trim()).toBe('0');
    expect((await svc.client.getBatch(b.id)).status).toEqual(before.status);
  });

  it('retry on a running batch → 409', async () => {
    const b = await svc.client.createBatch({ task: 'slow', items: ['a', 'b'], parallelism: 1 });
    await waitUntil(async () => started(b.id).length > 0, 'the first item to start');
    await expectProblem(await svc.client.request('POST', `/v1/batches/${b.id}/retry`), 409);
    await action(b.id, 'cancel');
  });
});
