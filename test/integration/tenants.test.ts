import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ApiClient } from '../helpers/api-client.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { allBatchIds, expectProblem } from './support.js';

/** Tenants are isolated: another tenant's batch does not exist for you, on every route. */
describe('tenant isolation', () => {
  let svc: TestService;
  let other: ApiClient;
  let mine: any;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
    other = await svc.newTenant('tenant-b');
    mine = await svc.client.createBatch({ task: 'rev', items: ['abc', 'def'], labels: { team: 'a' } });
    await svc.client.waitForPhase(mine.id);
  });
  afterAll(async () => svc?.close());

  it('another tenant gets 404 for the batch, its items, an item, its results, its events and every action', async () => {
    const id = mine.id;
    const calls: [string, string][] = [
      ['GET', `/v1/batches/${id}`],
      ['GET', `/v1/batches/${id}/items`],
      ['GET', `/v1/batches/${id}/items?status=succeeded`],
      ['GET', `/v1/batches/${id}/items/0`],
      ['GET', `/v1/batches/${id}/items/0/input`],
      ['GET', `/v1/batches/${id}/results`],
      ['POST', `/v1/batches/${id}/cancel`],
      ['POST', `/v1/batches/${id}/suspend`],
      ['POST', `/v1/batches/${id}/resume`],
      ['POST', `/v1/batches/${id}/retry`],
      ['DELETE', `/v1/batches/${id}`],
    ];
    for (const [method, p] of calls) {
      const res = await other.request(method, p);
      await expectProblem(res, 404);
    }
    // The owner still sees it whole and unchanged.
    const still = await svc.client.getBatch(id);
    expect(still.status.phase).toBe('Succeeded');
    expect((await svc.client.results(id)).map((r) => r.result)).toEqual(['cba', 'fed']);
  });

  it("another tenant cannot PUT a result into the batch with its API key", async () => {
    const res = await other.request('PUT', `/v1/batches/${mine.id}/items/0/result`, 'hijacked', { 'content-type': 'text/plain' });
    await expectProblem(res, 404);
    expect((await svc.client.results(mine.id))[0].result).toBe('cba');
  });

  it("lists do not show another tenant's batches, whatever the filter", async () => {
    const theirs = await other.createBatch({ task: 'rev', items: ['x'], labels: { team: 'a' } });
    expect(await allBatchIds(other)).toEqual([theirs.id]);
    expect(await allBatchIds(other, 'labelSelector=team=a')).toEqual([theirs.id]);
    expect(await allBatchIds(svc.client)).not.toContain(theirs.id);
    expect(await allBatchIds(svc.client, 'labelSelector=team=a')).toEqual([mine.id]);
    await expectProblem(await svc.client.request('GET', `/v1/batches/${theirs.id}`), 404);
  });

  it("a label-selector delete only deletes the caller's batches", async () => {
    const theirs = await other.createBatch({ task: 'rev', items: ['y'], labels: { wipe: 'yes' } });
    const alsoMine = await svc.client.createBatch({ task: 'rev', items: ['z'], labels: { wipe: 'yes' } });
    const r = await other.json('DELETE', '/v1/batches?labelSelector=wipe=yes');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ deleted: 1 });
    expect((await other.request('GET', `/v1/batches/${theirs.id}`)).status).toBe(404);
    expect((await svc.client.json('GET', `/v1/batches/${alsoMine.id}`)).status).toBe(200);
  });
});
