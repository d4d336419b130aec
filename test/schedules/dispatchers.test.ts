import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';
import type { FanoutProcess } from '../helpers/processes.js';

/**
 * Real processes: `fanout api`, two `fanout dispatcher` on the same SQLite file and Redis, and a
 * worker. Every tick of a every-second schedule starts exactly one batch whichever dispatcher
 * gets there first; with every dispatcher down for several ticks, the one that comes back
 * starts a single catch-up batch and reports the ticks nobody ran.
 */
describe('schedules with several dispatchers', () => {
  let c: Cluster;
  let dispatchers: FanoutProcess[] = [];
  beforeAll(async () => {
    c = newCluster(inject('redisUrl'));
    await c.api();
    dispatchers = await Promise.all([c.dispatcher(), c.dispatcher()]);
    await c.worker(['rev=rev']);
  }, 120_000);
  afterAll(async () => c?.stopAll());

  const batchesOf = async (id: string): Promise<any[]> =>
    (await c.client.json('GET', `/v1/batches?limit=500&labelSelector=${encodeURIComponent(`fanout.dev/schedule=${id}`)}`)).body.items;
  const get = async (id: string) => (await c.client.json('GET', `/v1/schedules/${id}`)).body;
  const ticked = (p: FanoutProcess, id: string) => p.output().split('\n').filter((l) => l.includes('"schedule ticked"') && l.includes(id)).length;

  it('two dispatchers: exactly one batch per tick', async () => {
    const r = await c.client.json('POST', '/v1/schedules', { name: 'dup', schedule: '* * * * * *', successfulHistoryLimit: 100, batchTemplate: { task: 'rev', items: ['a'] } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = r.body.id;
    // recentRuns shows the last 10: stop well before that.
    await waitUntil('5 runs', async () => (await get(id)).status.recentRuns.length >= 5, 30_000, 200);
    await c.client.json('PATCH', `/v1/schedules/${id}`, { suspend: true });
    await sleep(1500);
    const batches = await batchesOf(id);
    const runs = (await get(id)).status.recentRuns;
    // One batch per started run, and one run per tick (the batch name carries the tick's second).
    const started = runs.filter((x: any) => x.outcome === 'started');
    expect(started.length).toBe(runs.length);
    expect(new Set(started.map((x: any) => x.time)).size).toBe(started.length);
    expect(batches.length).toBe(started.length);
    expect(new Set(batches.map((b) => b.id))).toEqual(new Set(started.map((x: any) => x.batchId)));
    const names = batches.map((b) => b.name);
    expect(new Set(names).size).toBe(names.length);
    // Both dispatchers are in the race; together they logged one tick per batch.
    expect(ticked(dispatchers[0], id) + ticked(dispatchers[1], id)).toBe(batches.length);
  }, 60_000);

  it('all dispatchers down for several ticks: one catch-up batch, the missed ticks reported', async () => {
    const r = await c.client.json('POST', '/v1/schedules', { schedule: '*/2 * * * * *', successfulHistoryLimit: 100, batchTemplate: { task: 'rev', items: ['a'] } });
    const id = r.body.id;
    await waitUntil('a first run', async () => (await batchesOf(id)).length >= 1, 20_000, 200);
    await Promise.all(dispatchers.map((d) => d.kill('SIGKILL')));
    const before = (await batchesOf(id)).length;
    await sleep(9000); // about 4 ticks with no dispatcher
    expect((await batchesOf(id)).length).toBe(before);
    const back = await c.dispatcher();
    dispatchers = [back];
    const got = await waitUntil('missed ticks reported', async () => {
      const s = await get(id);
      return s.status.missed ? s : null;
    }, 30_000, 200);
    await c.client.json('PATCH', `/v1/schedules/${id}`, { suspend: true });
    const missed = got.status.missed;
    expect(missed.count).toBeGreaterThanOrEqual(3);
    expect(Date.parse(missed.last)).toBeGreaterThan(Date.parse(missed.first));
    expect(Date.parse(missed.last) - Date.parse(missed.first)).toBe((missed.count - 1) * 2000);
    // The catch-up is the tick right after the last missed one, and it is the only run for all of them.
    const runs = got.status.recentRuns;
    const catchUp = runs.find((x: any) => Date.parse(x.time) === Date.parse(missed.last) + 2000);
    expect(catchUp).toMatchObject({ outcome: 'started' });
    const inGap = runs.filter((x: any) => Date.parse(x.time) >= Date.parse(missed.first) && Date.parse(x.time) <= Date.parse(missed.last));
    expect(inGap).toEqual([]);
    // Catch-up batch + the ones from before; later regular ticks may follow before the suspend.
    expect((await batchesOf(id)).length).toBeGreaterThanOrEqual(before + 1);
  }, 90_000);
});
