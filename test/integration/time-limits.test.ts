import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { allBatchIds, expectProblem } from './support.js';

/** Seconds a client sends become timers: above Node's 24.8-day timer they must neither fire at once nor be accepted past their maximum. */
describe('time limits in a spec (finding 4)', () => {
  const YEAR = 31_536_000;
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev', 'slow=sleep 1; cat'] });
  });
  afterAll(async () => svc?.close());

  it('an itemTimeoutSeconds past 2^31 ms does not time the item out at once', async () => {
    // 2,147,484 s = 2,147,484,000 ms: one past what setTimeout holds; it used to fire after 1 ms.
    const batch = await svc.client.createBatch({ task: 'slow', items: ['a'], itemTimeoutSeconds: 2_147_484, activeDeadlineSeconds: YEAR });
    const done = await svc.client.waitForPhase(batch.id);
    const item = (await svc.client.json('GET', `/v1/batches/${batch.id}/items/0`)).body;
    expect(done.status.phase, JSON.stringify(item)).toBe('Succeeded');
    expect(item.result).toBe('a');
  });

  it('the year-long maxima are accepted', async () => {
    const batch = await svc.client.createBatch({ task: 'rev', items: ['a'], itemTimeoutSeconds: YEAR, activeDeadlineSeconds: YEAR });
    expect((await svc.client.waitForPhase(batch.id)).status.phase).toBe('Succeeded');
  });

  it.each([
    ['itemTimeoutSeconds', { itemTimeoutSeconds: YEAR + 1 }, '/itemTimeoutSeconds'],
    ['activeDeadlineSeconds', { activeDeadlineSeconds: YEAR + 1 }, '/activeDeadlineSeconds'],
    ['activeDeadlineSeconds far past a Date', { activeDeadlineSeconds: 9_007_199_254_740_991 }, '/activeDeadlineSeconds'],
  ])('%s over its maximum → 422 naming it', async (_name, fields, pointer) => {
    const before = await allBatchIds(svc.client);
    const p = await expectProblem(await svc.client.request('POST', '/v1/batches', { task: 'rev', items: ['a'], ...fields }), 422, pointer);
    expect(p.detail).toContain(String(YEAR));
    expect(await allBatchIds(svc.client)).toEqual(before);
  });

  it('a schedule startingDeadlineSeconds over its maximum → 422, on create and patch', async () => {
    const template = { task: 'rev', items: ['a'] };
    await expectProblem(await svc.client.request('POST', '/v1/schedules', { schedule: '0 0 1 1 *', startingDeadlineSeconds: YEAR + 1, batchTemplate: template }), 422, '/startingDeadlineSeconds');
    await expectProblem(await svc.client.request('POST', '/v1/schedules', { schedule: '0 0 1 1 *', batchTemplate: { ...template, itemTimeoutSeconds: YEAR + 1 } }), 422, '/batchTemplate/itemTimeoutSeconds');
    const created = await svc.client.json('POST', '/v1/schedules', { schedule: '0 0 1 1 *', suspend: true, startingDeadlineSeconds: YEAR, batchTemplate: template });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await expectProblem(await svc.client.request('PATCH', `/v1/schedules/${created.body.id}`, { startingDeadlineSeconds: YEAR + 1 }), 422, '/startingDeadlineSeconds');
    expect((await svc.client.json('GET', `/v1/schedules/${created.body.id}`)).body.spec.startingDeadlineSeconds).toBe(YEAR);
  });
});
