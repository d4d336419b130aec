import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchTokens } from '../../src/api/tokens.js';
import { serverSecret } from '../../src/store/tenants.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem, registerTaskWithoutWorker, waitUntil } from './support.js';

/**
 * GET /v1/batches/{id} with a batch-scoped token: a worker of one batch (a Kubernetes worker Job)
 * polls its batch to know when to exit. The token reads that batch and nothing else.
 */
describe('a batch token reads its own batch', () => {
  let svc: TestService;
  let batch: any;
  let other: any;
  let tokens: ReturnType<typeof batchTokens>;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false });
    await registerTaskWithoutWorker(svc, 'ext');
    batch = await svc.client.createBatch({ task: 'ext', items: ['a', 'b'], labels: { team: 'x' } });
    other = await svc.client.createBatch({ task: 'ext', items: ['c'] });
    // Compared below with a read through the API key: wait until the dispatcher has released both
    // items and moved the phase (two transactions), so the two reads see the same status.
    await waitUntil(async () => (await svc.client.getBatch(batch.id)).status.phase === 'Running', 'the batch to be Running');
    tokens = batchTokens(await svc.service.store.write(serverSecret()));
  });
  afterAll(async () => svc?.close());

  const asToken = (token: string, method: string, p: string) => fetch(`${svc.url}${p}`, { method, headers: { authorization: `Bearer ${token}` } });

  it('answers the batch and its status, as the API key does', async () => {
    const r = await asToken(tokens.sign(batch.id), 'GET', `/v1/batches/${batch.id}`);
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body).toMatchObject({ id: batch.id, labels: { team: 'x' }, status: { counts: { total: 2 } } });
    expect(body.status).toEqual((await svc.client.getBatch(batch.id)).status);
  });

  it("another batch's token, or a forged one → 403; a token for a batch that does not exist → 404", async () => {
    await expectProblem(await asToken(tokens.sign(other.id), 'GET', `/v1/batches/${batch.id}`), 403);
    await expectProblem(await asToken('fbt_forged', 'GET', `/v1/batches/${batch.id}`), 403);
    await expectProblem(await asToken(tokens.sign('bnosuchbatch'), 'GET', '/v1/batches/bnosuchbatch'), 404);
  });

  it('opens nothing else: listing, items, results and actions still need an API key', async () => {
    const token = tokens.sign(batch.id);
    for (const p of ['/v1/batches', `/v1/batches/${batch.id}/items`, `/v1/batches/${batch.id}/items/0`, `/v1/batches/${batch.id}/results`]) {
      await expectProblem(await asToken(token, 'GET', p), 401);
    }
    for (const action of ['cancel', 'suspend', 'retry']) await expectProblem(await asToken(token, 'POST', `/v1/batches/${batch.id}/${action}`), 401);
    await expectProblem(await asToken(token, 'DELETE', `/v1/batches/${batch.id}`), 401);
    expect((await svc.client.getBatch(batch.id)).status.phase).not.toBe('Cancelled');
  });
});
