import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ApiClient } from '../helpers/api-client.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem } from './support.js';

/** A batch's priority over the API: on create, in a schedule's template, PATCH, and bad input. */
describe('batch priority', () => {
  let svc: TestService;
  let other: ApiClient;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
    other = await svc.newTenant('other');
  });
  afterAll(async () => svc?.close());

  it('is 0 unless set, and shown as given', async () => {
    const plain = await svc.client.createBatch({ task: 'rev', items: ['a'] });
    expect(plain.priority).toBe(0);
    const set = await svc.client.createBatch({ task: 'rev', items: ['a'], priority: -1000 });
    expect(set.priority).toBe(-1000);
    expect(set.spec.priority).toBe(-1000);
    expect((await svc.client.getBatch(set.id)).priority).toBe(-1000);
    const listed = await svc.client.json('GET', '/v1/batches?limit=10');
    expect(listed.body.items.find((b: { id: string }) => b.id === set.id).priority).toBe(-1000);
  });

  it('refuses a priority out of range or not an integer with 422 and a pointer, on create and PATCH', async () => {
    await expectProblem(await svc.client.request('POST', '/v1/batches', { task: 'rev', items: ['a'], priority: 1001 }), 422, '/priority');
    await expectProblem(await svc.client.request('POST', '/v1/batches', { task: 'rev', items: ['a'], priority: 1.5 }), 422, '/priority');
    await expectProblem(await svc.client.request('POST', '/v1/batches', { task: 'rev', items: ['a'], priority: 'high' }), 422, '/priority');
    const b = await svc.client.createBatch({ task: 'rev', items: ['a'] });
    await expectProblem(await svc.client.request('PATCH', `/v1/batches/${b.id}`, { priority: -1001 }), 422, '/priority');
    await expectProblem(await svc.client.request('PATCH', `/v1/batches/${b.id}`, { parallelism: 3 }), 422);
    await expectProblem(await svc.client.request('PATCH', `/v1/batches/${b.id}`, 'priority: 2', { 'content-type': 'text/yaml' }), 415);
    await expectProblem(await svc.client.request('PATCH', `/v1/batches/${b.id}`), 415);
    expect((await svc.client.getBatch(b.id)).priority).toBe(0);
  });

  it("PATCH changes it; another tenant's batch or an unknown one is 404", async () => {
    const b = await svc.client.createBatch({ task: 'rev', items: ['a'], priority: 1 });
    const r = await svc.client.json('PATCH', `/v1/batches/${b.id}`, { priority: 7 });
    expect(r.status).toBe(200);
    expect(r.body.priority).toBe(7);
    expect(r.body.spec.priority).toBe(7);
    const empty = await svc.client.json('PATCH', `/v1/batches/${b.id}`, {});
    expect(empty.body.priority).toBe(7);
    await expectProblem(await other.request('PATCH', `/v1/batches/${b.id}`, { priority: 9 }), 404);
    await expectProblem(await svc.client.request('PATCH', '/v1/batches/bnosuchbatch', { priority: 9 }), 404);
    expect((await svc.client.getBatch(b.id)).priority).toBe(7);
  });

  it("a schedule's batch template carries it into every batch, and it is validated there", async () => {
    const spec = { schedule: '0 0 1 1 *', batchTemplate: { task: 'rev', items: ['abc'], priority: 42 } };
    const s = await svc.client.json('POST', '/v1/schedules', spec);
    expect(s.status).toBe(201);
    const t = await svc.client.json('POST', `/v1/schedules/${s.body.id}/trigger`);
    expect((await svc.client.getBatch(t.body.id)).priority).toBe(42);
    const bad = { schedule: '0 0 1 1 *', batchTemplate: { task: 'rev', items: ['abc'], priority: 5000 } };
    await expectProblem(await svc.client.request('POST', '/v1/schedules', bad), 422, '/batchTemplate/priority');
  });
});
