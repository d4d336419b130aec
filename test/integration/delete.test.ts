import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { allBatchIds, expectProblem, queryDb, waitUntil } from './support.js';

/** DELETE one batch or every batch matching a selector: gone with its items and results. */
describe('delete batches', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev', 'slow=sleep 5'] });
  });
  afterAll(async () => svc?.close());

  const itemRows = async (id: string) => (await queryDb<{ n: number }>(svc, 'SELECT count(*) AS n FROM items WHERE batch_id = ?', id))[0].n;

  it('DELETE /v1/batches/{id} → 204, then 404 everywhere, items gone', async () => {
    const b = await svc.client.createBatch({ task: 'rev', items: ['a', 'b', 'c'] });
    await svc.client.waitForPhase(b.id);
    expect(await itemRows(b.id)).toBe(3);
    const res = await svc.client.request('DELETE', `/v1/batches/${b.id}`);
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    await expectProblem(await svc.client.request('GET', `/v1/batches/${b.id}`), 404);
    await expectProblem(await svc.client.request('GET', `/v1/batches/${b.id}/items`), 404);
    await expectProblem(await svc.client.request('GET', `/v1/batches/${b.id}/results`), 404);
    await expectProblem(await svc.client.request('DELETE', `/v1/batches/${b.id}`), 404);
    expect(await allBatchIds(svc.client)).not.toContain(b.id);
    expect(await itemRows(b.id)).toBe(0);
  });

  it('deleting a running batch stops it: nothing of it comes back', async () => {
    const b = await svc.client.createBatch({ task: 'slow', items: ['a', 'b'], labels: { del: 'running' } });
    await waitUntil(async () => (await svc.client.getBatch(b.id)).status.counts.running > 0, 'an item to start');
    expect((await svc.client.request('DELETE', `/v1/batches/${b.id}`)).status).toBe(204);
    await expectProblem(await svc.client.request('GET', `/v1/batches/${b.id}`), 404);
    // Let the dispatcher resync and the lease come back; the deleted batch must not reappear.
    await new Promise((r) => setTimeout(r, 3000));
    await expectProblem(await svc.client.request('GET', `/v1/batches/${b.id}`), 404);
    expect(await queryDb(svc, 'SELECT id FROM batches WHERE id = ?', b.id)).toEqual([]);
  });

  it('DELETE /v1/batches?labelSelector=… → {deleted: n}, only matching ones gone', async () => {
    const make = (l: Record<string, string>) => svc.client.createBatch({ task: 'rev', items: ['x'], labels: l });
    const gone = [await make({ group: 'g1', env: 'dev' }), await make({ group: 'g1', env: 'prod' }), await make({ group: 'g1' })];
    const kept = [await make({ group: 'g2', env: 'dev' }), await make({ env: 'dev' }), await make({})];
    const before = await allBatchIds(svc.client);
    const r = await svc.client.json('DELETE', `/v1/batches?labelSelector=${encodeURIComponent('group=g1')}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ deleted: 3 });
    const after = await allBatchIds(svc.client);
    expect(after).toEqual(before.filter((id) => !gone.some((g) => g.id === id)));
    for (const k of kept) expect(after).toContain(k.id);
    for (const g of gone) expect(await itemRows(g.id)).toBe(0);
  });

  it('a selector with set operators deletes exactly its matches; matching nothing deletes nothing', async () => {
    const a = await svc.client.createBatch({ task: 'rev', items: ['x'], labels: { sweep: 'a' } });
    const b = await svc.client.createBatch({ task: 'rev', items: ['x'], labels: { sweep: 'b' } });
    const c = await svc.client.createBatch({ task: 'rev', items: ['x'], labels: { sweep: 'c' } });
    const none = await svc.client.json('DELETE', `/v1/batches?labelSelector=${encodeURIComponent('sweep=zzz')}`);
    expect(none.body).toEqual({ deleted: 0 });
    const r = await svc.client.json('DELETE', `/v1/batches?labelSelector=${encodeURIComponent('sweep notin (b),sweep')}`);
    expect(r.body).toEqual({ deleted: 2 });
    const left = await allBatchIds(svc.client, 'labelSelector=sweep');
    expect(left).toEqual([b.id]);
    expect(left).not.toContain(a.id);
    expect(left).not.toContain(c.id);
  });

  it('DELETE /v1/batches without a selector is refused, nothing deleted', async () => {
    const before = await allBatchIds(svc.client);
    expect(before.length).toBeGreaterThan(0);
    const res = await svc.client.request('DELETE', '/v1/batches');
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    await res.text();
    const empty = await svc.client.request('DELETE', '/v1/batches?labelSelector=');
    expect(empty.status).toBeGreaterThanOrEqual(400);
    expect(empty.status).toBeLessThan(500);
    expect(await allBatchIds(svc.client)).toEqual(before);
  });
});
