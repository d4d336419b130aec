import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ApiClient } from '../helpers/api-client.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { run } from '../../src/store/op.js';
import { createTenantForKey } from '../../src/store/tenants.js';
import { waitUntil } from '../helpers/cluster.js';

/**
 * Fair share between tenants and priorities within one, driven as clients would: several
 * tenants (API keys of their own) submit to one service with real workers, Redis and store.
 * Assertions are on order and progress (counted completions), never on time.
 */

// 0.1 s per item, so a few hundred items are a backlog that lasts while the test looks.
const NAP = 'nap=sleep 0.1; cat';

const services: TestService[] = [];
afterEach(async () => {
  while (services.length > 0) await services.pop()!.close();
});

async function fairService(env: Record<string, string> = {}, reuse?: TestService): Promise<TestService> {
  const svc = await startTestService({
    redisUrl: inject('redisUrl'),
    tasks: [NAP],
    env: { FANOUT_CONCURRENCY: '4', ...(reuse ? { DATABASE_URL: reuse.databaseUrl } : {}), ...env },
    ...(reuse ? { dataDir: reuse.dataDir, prefix: reuse.prefix, apiKey: reuse.apiKey } : {}),
  });
  services.push(svc);
  return svc;
}

/** A tenant of its own (made the way the CLI and tests make one), with its weight set in the store. */
async function tenant(svc: TestService, name: string, weight = 1): Promise<{ client: ApiClient; key: string; id: string }> {
  const key = `key-${randomBytes(8).toString('hex')}`;
  const id = await svc.service.store.write(createTenantForKey(key, name));
  if (weight !== 1) await svc.service.store.write(run('UPDATE tenants SET weight = ? WHERE id = ?', weight, id));
  return { client: new ApiClient(svc.url, key), key, id };
}

const items = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}-${i}`);

async function counts(client: ApiClient, id: string): Promise<{ total: number; pending: number; running: number; succeeded: number }> {
  return (await client.getBatch(id)).status.counts;
}

/** Indexes of `ids`' items in the order they finished (by finishedAt, then batch order). */
async function finishOrder(client: ApiClient, ids: Record<string, string>): Promise<string[]> {
  const all: { who: string; at: number }[] = [];
  for (const [who, id] of Object.entries(ids)) {
    const r = await client.json('GET', `/v1/batches/${id}/items?limit=1000`);
    for (const it of r.body.items) all.push({ who, at: Date.parse(it.finishedAt) });
  }
  return all.sort((a, b) => a.at - b.at).map((x) => x.who);
}

describe('e2e: fair share between tenants', () => {
  it("a late small batch of tenant B completes while tenant A's big batch still has a backlog", { timeout: 120_000 }, async () => {
    const svc = await fairService();
    const a = await tenant(svc, 'a');
    const b = await tenant(svc, 'b');
    // 600 items × 0.1 s on 4 slots: about 15 s of work, all of it released to Redis at once.
    const big = await a.client.createBatch({ task: 'nap', items: items(600, 'a'), parallelism: 100_000 });
    await waitUntil('tenant A running', async () => (await counts(a.client, big.id)).succeeded >= 8);
    const small = await b.client.createBatch({ task: 'nap', items: items(8, 'b'), parallelism: 8 });
    const done = await b.client.waitForPhase(small.id, ['Succeeded', 'Failed', 'Cancelled'], 60_000);
    expect(done.status.phase).toBe('Succeeded');
    const bigNow = await counts(a.client, big.id);
    // First come, first served would have run all 600 of A's items first.
    expect(bigNow.succeeded).toBeLessThan(300);
    expect(bigNow.pending + bigNow.running).toBeGreaterThan(300);
    await a.client.json('POST', `/v1/batches/${big.id}/cancel`);
  });

  it('weights 3:1 give roughly 3:1 completions while both tenants have work', { timeout: 120_000 }, async () => {
    // A budget of 40 items out per task queue, shares 30 and 10, ten times the 4 worker slots:
    // a queue always waits, so each tenant's completions follow its items out (with a budget
    // near the slot count, refill delays on a loaded machine decide instead).
    const svc = await fairService({ FANOUT_RELEASE_WINDOW: '40' });
    const heavy = await tenant(svc, 'heavy', 3);
    const light = await tenant(svc, 'light', 1);
    const h = await heavy.client.createBatch({ task: 'nap', items: items(1000, 'h'), parallelism: 100_000 });
    const l = await light.client.createBatch({ task: 'nap', items: items(1000, 'l'), parallelism: 100_000 });
    // Measured after a warm-up, so the first releases (before both were known) do not count.
    await waitUntil('both tenants running', async () => (await counts(heavy.client, h.id)).succeeded >= 10 && (await counts(light.client, l.id)).succeeded >= 5);
    const h0 = (await counts(heavy.client, h.id)).succeeded;
    const l0 = (await counts(light.client, l.id)).succeeded;
    await waitUntil('200 more completions', async () => (await counts(heavy.client, h.id)).succeeded - h0 + (await counts(light.client, l.id)).succeeded - l0 >= 200, 90_000, 200);
    const dh = (await counts(heavy.client, h.id)).succeeded - h0;
    const dl = (await counts(light.client, l.id)).succeeded - l0;
    const ratio = dh / Math.max(1, dl);
    expect(ratio, `heavy ${dh}, light ${dl}`).toBeGreaterThan(2);
    expect(ratio, `heavy ${dh}, light ${dl}`).toBeLessThan(4.5);
    await heavy.client.json('POST', `/v1/batches/${h.id}/cancel`);
    await light.client.json('POST', `/v1/batches/${l.id}/cancel`);
  });

  it("a dispatcher restart keeps fairness: B's late batch still goes ahead of A's backlog", { timeout: 120_000 }, async () => {
    const first = await fairService();
    const a = await tenant(first, 'a');
    const b = await tenant(first, 'b');
    const big = await a.client.createBatch({ task: 'nap', items: items(600, 'a'), parallelism: 100_000 });
    await waitUntil('tenant A running', async () => (await counts(a.client, big.id)).succeeded >= 8);
    await first.close();
    services.splice(services.indexOf(first), 1);
    // A new process over the same store and Redis: nothing of the shares lived in the old one.
    const second = await fairService({}, first);
    const aAgain = new ApiClient(second.url, a.key);
    const bAgain = new ApiClient(second.url, b.key);
    const small = await bAgain.createBatch({ task: 'nap', items: items(8, 'b'), parallelism: 8 });
    expect((await bAgain.waitForPhase(small.id, ['Succeeded', 'Failed', 'Cancelled'], 60_000)).status.phase).toBe('Succeeded');
    const bigNow = await counts(aAgain, big.id);
    expect(bigNow.pending + bigNow.running).toBeGreaterThan(300);
    await aAgain.json('POST', `/v1/batches/${big.id}/cancel`);
  });
});

describe('e2e: priorities within a tenant', () => {
  it('runs the higher priority first', { timeout: 120_000 }, async () => {
    const svc = await fairService({ FANOUT_RELEASE_WINDOW: '2' });
    const t = await tenant(svc, 't');
    const low = await t.client.createBatch({ task: 'nap', items: items(10, 'low'), parallelism: 100, priority: 0 });
    const high = await t.client.createBatch({ task: 'nap', items: items(10, 'high'), parallelism: 100, priority: 5 });
    expect(high.priority).toBe(5);
    await t.client.waitForPhase(low.id);
    await t.client.waitForPhase(high.id);
    const order = await finishOrder(t.client, { low: low.id, high: high.id });
    // low had its first items out before high existed; then high goes first, all of it.
    const lastHigh = order.lastIndexOf('high');
    expect(order.slice(0, lastHigh).filter((w) => w === 'low').length, order.join(' ')).toBeLessThanOrEqual(4);
  });

  it('PATCH priority on a running batch changes the order', { timeout: 120_000 }, async () => {
    const svc = await fairService({ FANOUT_RELEASE_WINDOW: '2' });
    const t = await tenant(svc, 't');
    const low = await t.client.createBatch({ task: 'nap', items: items(10, 'low'), parallelism: 100, priority: 0 });
    const high = await t.client.createBatch({ task: 'nap', items: items(10, 'high'), parallelism: 100, priority: 5 });
    const patched = await t.client.json('PATCH', `/v1/batches/${low.id}`, { priority: 10 });
    expect(patched.status).toBe(200);
    expect(patched.body.priority).toBe(10);
    expect(patched.body.spec.priority).toBe(10);
    expect((await t.client.getBatch(low.id)).priority).toBe(10);
    await t.client.waitForPhase(low.id);
    await t.client.waitForPhase(high.id);
    const order = await finishOrder(t.client, { low: low.id, high: high.id });
    // Without the change high would finish all ten first; now low does, but for what was out.
    const lastLow = order.lastIndexOf('low');
    expect(order.slice(0, lastLow).filter((w) => w === 'high').length, order.join(' ')).toBeLessThanOrEqual(4);
  });

  it('aging lets a low-priority batch progress under a stream of high-priority ones', { timeout: 120_000 }, async () => {
    // One point per second: the low batch (0) reaches the stream's priority (3) within seconds.
    const svc = await fairService({ FANOUT_RELEASE_WINDOW: '2', FANOUT_PRIORITY_AGING_SECONDS: '1' });
    const t = await tenant(svc, 't');
    const low = await t.client.createBatch({ task: 'nap', items: items(6, 'low'), parallelism: 100, priority: 0 });
    // Two slots at 0.1 s an item serve about 20 items a second; the stream brings about 40.
    const stream: string[] = [];
    let lowDone = false;
    let highWaitingWhenLowDone = false;
    for (let k = 0; k < 150 && !lowDone; k++) {
      stream.push((await t.client.createBatch({ task: 'nap', items: items(4, `high${k}`), parallelism: 100, priority: 3 })).id);
      await sleep(100);
      const now = await t.client.getBatch(low.id);
      if (now.status.phase === 'Succeeded') {
        lowDone = true;
        const last = await counts(t.client, stream[stream.length - 1]);
        highWaitingWhenLowDone = last.pending > 0;
      }
    }
    expect(lowDone).toBe(true);
    expect(highWaitingWhenLowDone).toBe(true);
    for (const id of stream) await t.client.json('POST', `/v1/batches/${id}/cancel`);
  });
});
