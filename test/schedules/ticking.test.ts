import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runDueSchedule } from '../../src/store/schedule-runs.js';
import { getScheduleById } from '../../src/store/schedules.js';
import { waitUntil } from '../helpers/cluster.js';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * The scheduler of an in-process dispatcher on a real clock, with second-granularity cron
 * (the optional sixth field), and runDueSchedule on the same store with an injected clock for
 * what would otherwise take days (missed ticks, starting deadlines).
 */
describe('schedules tick', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev', 'slow=sleep 6', 'fail=exit 3'] });
  });
  afterAll(async () => svc?.close());

  const create = async (body: Record<string, unknown>) => {
    const r = await svc.client.json('POST', '/v1/schedules', body);
    if (r.status !== 201) throw new Error(`create schedule: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const get = async (id: string) => (await svc.client.json('GET', `/v1/schedules/${id}`)).body;
  const batchesOf = async (id: string): Promise<any[]> =>
    (await svc.client.json('GET', `/v1/batches?limit=500&labelSelector=${encodeURIComponent(`fanout.dev/schedule=${id}`)}`)).body.items;
  const stop = (id: string) => svc.client.json('PATCH', `/v1/schedules/${id}`, { suspend: true });

  it('starts a labelled batch per tick; status follows (lastScheduleTime, active, lastSuccessfulTime)', async () => {
    const s = await create({ name: 'every2s', schedule: '*/2 * * * * *', batchTemplate: { task: 'rev', items: ['abc'] } });
    const b = await waitUntil('a batch of the schedule', async () => (await batchesOf(s.id))[0]);
    expect(b.labels['fanout.dev/schedule']).toBe(s.id);
    expect(b.name).toMatch(/^every2s-\d+$/);
    await svc.client.waitForPhase(b.id);
    const st = await waitUntil('lastSuccessfulTime', async () => {
      const got = await get(s.id);
      return got.status.lastSuccessfulTime ? got.status : null;
    });
    expect(st.lastScheduleTime).not.toBeNull();
    expect(Date.parse(st.nextRunTime)).toBeGreaterThan(Date.parse(st.lastScheduleTime));
    expect(Date.parse(st.nextRunTime) % 2000).toBe(0);
    await stop(s.id);
  });

  it('Forbid skips ticks while a batch of the schedule is running, and says why', async () => {
    const s = await create({ schedule: '* * * * * *', concurrencyPolicy: 'Forbid', batchTemplate: { task: 'slow', items: ['x'] } });
    const first = await waitUntil('first batch', async () => (await batchesOf(s.id))[0]);
    await waitUntil('a skipped tick', async () => (await get(s.id)).status.lastSkipped);
    await sleep(2500);
    const got = await get(s.id);
    const batches = await batchesOf(s.id);
    expect(batches.map((b) => b.id)).toEqual([first.id]);
    expect(got.status.active).toEqual([first.id]);
    expect(got.status.lastSkipped).toMatchObject({ reason: 'ConcurrencyPolicyForbid' });
    expect(got.status.lastSkipped.message).toContain(first.id);
    expect(got.status.recentRuns.filter((r: any) => r.outcome === 'skipped').length).toBeGreaterThanOrEqual(2);
    await stop(s.id);
    await svc.client.json('POST', `/v1/batches/${first.id}/cancel`);
  });

  it('Replace cancels the running batch, then starts the new one', async () => {
    const s = await create({ schedule: '*/2 * * * * *', concurrencyPolicy: 'Replace', failedHistoryLimit: 10, batchTemplate: { task: 'slow', items: ['x'] } });
    const batches = await waitUntil('two batches', async () => {
      const list = await batchesOf(s.id);
      return list.length >= 2 ? list : null;
    });
    await stop(s.id);
    const oldest = batches[batches.length - 1];
    const old = await svc.client.waitForPhase(oldest.id, ['Cancelled'], 10_000);
    expect(old.status.conditions.map((c: any) => c.reason)).toContain('CancelRequested');
    const runs = (await get(s.id)).status.recentRuns;
    expect(runs.some((r: any) => r.reason === 'ReplacedActive')).toBe(true);
    // Never two running at once: everything but the newest is cancelled.
    const now = await batchesOf(s.id);
    const running = now.filter((b) => !['Succeeded', 'Failed', 'Cancelled'].includes(b.status.phase));
    expect(running.length).toBeLessThanOrEqual(1);
    for (const b of running) await svc.client.json('POST', `/v1/batches/${b.id}/cancel`);
  });

  it('suspend stops ticks; resuming starts them again', async () => {
    const s = await create({ schedule: '* * * * * *', suspend: true, batchTemplate: { task: 'rev', items: ['a'] } });
    expect(s.status.nextRunTime).toBeNull();
    await sleep(2500);
    expect(await batchesOf(s.id)).toEqual([]);
    await svc.client.json('PATCH', `/v1/schedules/${s.id}`, { suspend: false });
    await waitUntil('a batch after resume', async () => (await batchesOf(s.id)).length > 0);
    await stop(s.id);
    await sleep(1200); // a tick already in its transaction may still land
    const n = (await batchesOf(s.id)).length;
    await sleep(2500);
    expect((await batchesOf(s.id)).length).toBe(n);
    expect((await get(s.id)).status.nextRunTime).toBeNull();
  });

  it('history limits prune old finished batches (successful and failed separately)', async () => {
    const ok = await create({ schedule: '* * * * * *', successfulHistoryLimit: 2, batchTemplate: { task: 'rev', items: ['a'] } });
    const bad = await create({ schedule: '* * * * * *', failedHistoryLimit: 1, batchTemplate: { task: 'fail', items: ['a'], retry: { backoffLimitPerItem: 0 } } });
    const started = new Set<string>();
    await waitUntil('6 runs each', async () => {
      for (const id of [ok.id, bad.id]) for (const r of (await get(id)).status.recentRuns) if (r.batchId) started.add(r.batchId);
      const okRuns = (await get(ok.id)).status.recentRuns.filter((r: any) => r.outcome === 'started').length;
      const badRuns = (await get(bad.id)).status.recentRuns.filter((r: any) => r.outcome === 'started').length;
      return okRuns >= 6 && badRuns >= 6;
    }, 30_000, 200);
    await stop(ok.id);
    await stop(bad.id);
    // Once every batch has finished, exactly the limits remain.
    await waitUntil('pruned to the limits', async () => {
      const okLeft = await batchesOf(ok.id);
      const badLeft = await batchesOf(bad.id);
      return okLeft.length === 2 && okLeft.every((b) => b.status.phase === 'Succeeded') && badLeft.length === 1 && badLeft[0].status.phase === 'Failed';
    }, 20_000, 200);
    // The pruned ones are gone like a DELETE: 404.
    const kept = new Set([...(await batchesOf(ok.id)), ...(await batchesOf(bad.id))].map((b) => b.id));
    const gone = [...started].filter((id) => !kept.has(id));
    expect(gone.length).toBeGreaterThanOrEqual(8);
    for (const id of gone) expect((await svc.client.json('GET', `/v1/batches/${id}`)).status).toBe(404);
    // The newest are the ones kept.
    const okStarted = (await get(ok.id)).status.recentRuns.filter((r: any) => r.outcome === 'started').map((r: any) => r.batchId);
    expect([...(await batchesOf(ok.id))].map((b) => b.id).sort()).toEqual(okStarted.slice(0, 2).sort());
  });

  it('trigger prunes too: successfulHistoryLimit 0 keeps nothing finished', async () => {
    const s = await create({ schedule: '0 0 1 1 *', successfulHistoryLimit: 0, batchTemplate: { task: 'rev', items: ['a'] } });
    const first = (await svc.client.json('POST', `/v1/schedules/${s.id}/trigger`)).body;
    await svc.client.waitForPhase(first.id);
    // Noticed by the scheduler when it finished, or by the next trigger at the latest.
    await svc.client.json('POST', `/v1/schedules/${s.id}/trigger`);
    await waitUntil('first batch pruned', async () => (await svc.client.json('GET', `/v1/batches/${first.id}`)).status === 404);
  });

  describe('missed ticks, with an injected clock', () => {
    const DAY = 86_400_000;

    it('a scheduler back after 3 days starts ONE batch for the latest tick and reports the missed ones', async () => {
      const s = await create({ schedule: '0 3 * * *', timeZone: 'Europe/Berlin', batchTemplate: { task: 'rev', items: ['a'] } });
      const due = Date.parse(s.status.nextRunTime);
      const now = due + 3 * DAY + 60_000;
      const outcome = (await svc.service.store.write(runDueSchedule(s.id, now)))!;
      expect(outcome.started).not.toBeNull();
      expect(outcome.tick).toBe(due + 3 * DAY);
      // A second dispatcher arriving with the same clock finds nothing to do.
      expect((await svc.service.store.write(runDueSchedule(s.id, now)))).toBeNull();
      const got = await get(s.id);
      expect(got.status.missed).toMatchObject({ count: 3, first: new Date(due).toISOString(), last: new Date(due + 2 * DAY).toISOString() });
      expect(got.status.lastScheduleTime).toBe(new Date(due + 3 * DAY).toISOString());
      expect(got.status.nextRunTime).toBe(new Date(due + 4 * DAY).toISOString());
      expect((await batchesOf(s.id)).map((b) => b.id)).toEqual([outcome.started]);
    });

    it('the latest missed tick past startingDeadlineSeconds is skipped, not run, and reported', async () => {
      const s = await create({ schedule: '0 3 * * *', startingDeadlineSeconds: 600, batchTemplate: { task: 'rev', items: ['a'] } });
      const due = Date.parse(s.status.nextRunTime);
      const outcome = (await svc.service.store.write(runDueSchedule(s.id, due + DAY + 3600_000)))!;
      expect(outcome.started).toBeNull();
      expect(outcome.skipped).toBe('MissedStartingDeadline');
      const got = await get(s.id);
      expect(got.status.lastSkipped).toMatchObject({ reason: 'MissedStartingDeadline', time: new Date(due + DAY).toISOString() });
      expect(got.status.missed).toMatchObject({ count: 1, first: new Date(due).toISOString() });
      expect(got.status.recentRuns[0]).toMatchObject({ outcome: 'skipped', reason: 'MissedStartingDeadline' });
      expect(await batchesOf(s.id)).toEqual([]);
      // Within the deadline of the next tick it runs again.
      expect((await svc.service.store.write(runDueSchedule(s.id, due + 2 * DAY + 5_000)))!.started).not.toBeNull();
    });

    it('many concurrent attempts at one tick start exactly one batch', async () => {
      const s = await create({ schedule: '*/5 * * * *', batchTemplate: { task: 'rev', items: ['a'] } });
      const due = (await svc.service.store.read(getScheduleById(s.id)))!.nextRunAt!;
      const outcomes = await Promise.all(Array.from({ length: 8 }, async () => svc.service.store.write(runDueSchedule(s.id, due + 10))));
      expect(outcomes.filter((o) => o?.started).length).toBe(1);
      expect((await batchesOf(s.id)).length).toBe(1);
    });
  });
});
