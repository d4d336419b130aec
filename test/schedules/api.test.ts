import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import type { ApiClient } from '../helpers/api-client.js';

/** /v1/schedules: create, get, list (selector, pages), update, delete, trigger, bad input, tenants. */
describe('schedules API', () => {
  let svc: TestService;
  let other: ApiClient;
  // Far in the future: nothing here ticks on its own.
  const spec = (extra: Record<string, unknown> = {}) => ({ schedule: '0 0 1 1 *', batchTemplate: { task: 'rev', items: ['abc', 'de'] }, ...extra });

  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
    other = await svc.newTenant();
  });
  afterAll(async () => svc?.close());

  const count = async () => (await svc.client.json('GET', '/v1/schedules?limit=500')).body.items.length;

  it('creates (201, Location, defaults, next run), gets, and lists by label selector with pages', async () => {
    const r = await svc.client.json('POST', '/v1/schedules', spec({ name: 'nightly', labels: { team: 'data' }, timeZone: 'Europe/Berlin' }));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.headers.get('location')).toBe(`/v1/schedules/${r.body.id}`);
    expect(r.body.spec).toMatchObject({ schedule: '0 0 1 1 *', timeZone: 'Europe/Berlin', concurrencyPolicy: 'Allow', suspend: false, successfulHistoryLimit: 3, failedHistoryLimit: 1 });
    // Midnight of 1 January in Berlin is 23:00 UTC the day before.
    expect(r.body.status.nextRunTime).toMatch(/-12-31T23:00:00.000Z$/);
    expect(r.body.status).toMatchObject({ lastScheduleTime: null, lastSuccessfulTime: null, active: [], missed: null, lastSkipped: null, recentRuns: [] });

    const got = await svc.client.json('GET', `/v1/schedules/${r.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body.name).toBe('nightly');

    const ids: string[] = [r.body.id];
    for (let i = 0; i < 3; i++) ids.push((await svc.client.json('POST', '/v1/schedules', spec({ labels: { team: i === 0 ? 'web' : 'data' } }))).body.id);
    const selected = await svc.client.json('GET', `/v1/schedules?labelSelector=${encodeURIComponent('team in (data)')}`);
    expect(selected.status).toBe(200);
    expect(selected.body.items.map((s: any) => s.id).sort()).toEqual([ids[0], ids[2], ids[3]].sort());
    const notWeb = await svc.client.json('GET', `/v1/schedules?labelSelector=${encodeURIComponent('team!=web')}`);
    expect(notWeb.body.items.map((s: any) => s.id)).not.toContain(ids[1]);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await svc.client.json('GET', `/v1/schedules?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((s: any) => s.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...seen].sort().reverse());
    for (const id of ids) expect(seen).toContain(id);
  });

  it('updates any field; a new cron or zone recomputes the next run', async () => {
    const id = (await svc.client.json('POST', '/v1/schedules', spec())).body.id;
    const r = await svc.client.json('PATCH', `/v1/schedules/${id}`, { schedule: '0 12 * * *', timeZone: 'America/New_York', concurrencyPolicy: 'Forbid', labels: { a: 'b' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.spec).toMatchObject({ schedule: '0 12 * * *', timeZone: 'America/New_York', concurrencyPolicy: 'Forbid' });
    expect(r.body.labels).toEqual({ a: 'b' });
    expect(r.body.status.nextRunTime).toMatch(/T1[67]:00:00.000Z$/);
    const suspended = await svc.client.json('PATCH', `/v1/schedules/${id}`, { suspend: true });
    expect(suspended.body.status.nextRunTime).toBeNull();
    const resumed = await svc.client.json('PATCH', `/v1/schedules/${id}`, { suspend: false, batchTemplate: { task: 'echo', items: [1] } });
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
    expect(resumed.body.status.nextRunTime).not.toBeNull();
    expect(resumed.body.spec.batchTemplate).toMatchObject({ task: 'echo', items: [1] });
    const bad = await svc.client.json('PATCH', `/v1/schedules/${id}`, { schedule: 'nope' });
    expect(bad.status).toBe(422);
    expect(bad.body.errors[0].pointer).toBe('/schedule');
    expect((await svc.client.json('GET', `/v1/schedules/${id}`)).body.spec.schedule).toBe('0 12 * * *');
  });

  it('trigger starts one batch now, labelled with the schedule', async () => {
    const id = (await svc.client.json('POST', '/v1/schedules', spec({ suspend: true }))).body.id;
    const r = await svc.client.json('POST', `/v1/schedules/${id}/trigger`);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.headers.get('location')).toBe(`/v1/batches/${r.body.id}`);
    expect(r.body.labels).toEqual({ 'fanout.dev/schedule': id });
    const done = await svc.client.waitForPhase(r.body.id);
    expect(done.status.phase).toBe('Succeeded');
    expect((await svc.client.results(r.body.id)).map((x) => x.result)).toEqual(['cba', 'ed']);
    const s = (await svc.client.json('GET', `/v1/schedules/${id}`)).body;
    expect(s.status.recentRuns[0]).toMatchObject({ outcome: 'started', batchId: r.body.id, reason: 'Triggered' });
    const listed = await svc.client.json('GET', `/v1/batches?labelSelector=${encodeURIComponent(`fanout.dev/schedule=${id}`)}`);
    expect(listed.body.items.map((b: any) => b.id)).toEqual([r.body.id]);
  });

  it('deletes (204, then 404); its batches stay', async () => {
    const id = (await svc.client.json('POST', '/v1/schedules', spec())).body.id;
    const b = (await svc.client.json('POST', `/v1/schedules/${id}/trigger`)).body.id;
    expect((await svc.client.request('DELETE', `/v1/schedules/${id}`)).status).toBe(204);
    expect((await svc.client.json('GET', `/v1/schedules/${id}`)).status).toBe(404);
    expect((await svc.client.request('DELETE', `/v1/schedules/${id}`)).status).toBe(404);
    expect((await svc.client.json('GET', `/v1/batches/${b}`)).status).toBe(200);
  });

  it("another tenant's schedule is 404 for every call", async () => {
    const id = (await svc.client.json('POST', '/v1/schedules', spec())).body.id;
    expect((await other.json('GET', `/v1/schedules/${id}`)).status).toBe(404);
    expect((await other.json('PATCH', `/v1/schedules/${id}`, { suspend: true })).status).toBe(404);
    expect((await other.json('POST', `/v1/schedules/${id}/trigger`)).status).toBe(404);
    expect((await other.request('DELETE', `/v1/schedules/${id}`)).status).toBe(404);
    expect((await other.json('GET', '/v1/schedules')).body.items).toEqual([]);
    expect((await svc.client.json('GET', `/v1/schedules/${id}`)).body.spec.suspend).toBe(false);
  });

  describe('bad input: 422 problem+json with pointers, nothing stored', () => {
    const cases: { name: string; body: unknown; pointer: string; status?: number }[] = [
      { name: 'invalid cron', body: spec({ schedule: '61 * * * *' }), pointer: '/schedule' },
      { name: 'a 3-field cron', body: spec({ schedule: '* * *' }), pointer: '/schedule' },
      { name: 'unknown macro', body: spec({ schedule: '@fortnightly' }), pointer: '/schedule' },
      { name: 'unknown time zone', body: spec({ timeZone: 'Europe/Atlantis' }), pointer: '/timeZone' },
      { name: 'negative successfulHistoryLimit', body: spec({ successfulHistoryLimit: -1 }), pointer: '/successfulHistoryLimit' },
      { name: 'negative failedHistoryLimit', body: spec({ failedHistoryLimit: -2 }), pointer: '/failedHistoryLimit' },
      { name: 'negative startingDeadlineSeconds', body: spec({ startingDeadlineSeconds: -1 }), pointer: '/startingDeadlineSeconds' },
      { name: 'unknown concurrencyPolicy', body: spec({ concurrencyPolicy: 'Never' }), pointer: '/concurrencyPolicy' },
      { name: 'missing schedule', body: { batchTemplate: { task: 'rev', items: ['a'] } }, pointer: '/schedule' },
      { name: 'missing template', body: { schedule: '@daily' }, pointer: '/batchTemplate' },
      { name: 'template without items', body: spec({ batchTemplate: { task: 'rev', items: [] } }), pointer: '/batchTemplate/items' },
      { name: 'template with a bad field', body: spec({ batchTemplate: { task: 'rev', items: ['a'], parallelism: 0 } }), pointer: '/batchTemplate/parallelism' },
      { name: 'template of a task no worker has', body: spec({ batchTemplate: { task: 'nosuch', items: ['a'] } }), pointer: '/batchTemplate/task' },
      { name: 'queue template without a task', body: spec({ batchTemplate: { items: ['a'] } }), pointer: '/batchTemplate/task' },
      { name: 'template placeholder an item lacks', body: spec({ batchTemplate: { task: 'rev', items: [{ a: 1 }], template: { env: { X: '{{ b }}' } } } }), pointer: '/batchTemplate/items/0' },
      { name: 'unknown field', body: spec({ every: 'day' }), pointer: '/every' },
      { name: 'kubernetes runtime on a server without Kubernetes', body: spec({ batchTemplate: { runtime: 'indexed-job', template: { image: 'busybox' }, items: ['a'] } }), pointer: '/batchTemplate/runtime' },
    ];
    it.each(cases)('$name', async ({ body, pointer, status }) => {
      const before = await count();
      const r = await svc.client.json('POST', '/v1/schedules', body);
      expect(r.status, JSON.stringify(r.body)).toBe(status ?? 422);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(r.body.errors.map((e: any) => e.pointer)).toContain(pointer);
      expect(await count()).toBe(before);
    });

    it('malformed JSON is 400', async () => {
      const r = await svc.client.json('POST', '/v1/schedules', '{"schedule":', { 'content-type': 'application/json' });
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    });

    it('a bad cursor or selector on list', async () => {
      expect((await svc.client.json('GET', '/v1/schedules?cursor=Zm9v')).status).toBe(422);
      expect((await svc.client.json('GET', `/v1/schedules?labelSelector=${encodeURIComponent('a in (')}`)).status).toBe(400);
    });
  });
});
