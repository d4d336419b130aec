import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { run } from '../../src/store/op.js';

/**
 * An item stored before nesting depth was limited (finding 3): 100,000 levels deep, so
 * JSON.stringify overflows the stack on it. The dispatcher must fail it, not throw on it every
 * second with the batch Pending forever, and its item view must answer, not 500.
 */
describe('an over-deep item already in the store', () => {
  const DEPTH = 100_000;
  const deep = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['fail=false', 'echo=cat'] });
  });
  afterAll(async () => svc?.close());

  /** Replaces item inputs in the service's store, as a store written before the fix holds them. */
  const storeInput = async (batchId: string, index: number, input: string) => {
    expect(await svc.service.store.write(run('UPDATE items SET input = ? WHERE batch_id = ? AND idx = ?', input, batchId, index))).toBe(1);
  };

  it('is failed at dispatch with a reason, the rest of its batch runs, and GET …/items/N answers it exactly', async () => {
    // Fails first, so that a retry hands the (then over-deep) item to the dispatcher again.
    const batch = await svc.client.createBatch({ task: 'fail', items: ['a', 'b'], retry: { backoffLimitPerItem: 0 } });
    expect((await svc.client.waitForPhase(batch.id)).status.phase).toBe('Failed');
    await storeInput(batch.id, 0, deep);

    const retried = await svc.client.json('POST', `/v1/batches/${batch.id}/retry`);
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    const done = await svc.client.waitForPhase(batch.id, ['Succeeded', 'Failed', 'Cancelled'], 15_000);
    expect(done.status.phase).toBe('Failed');

    const item = await svc.client.request('GET', `/v1/batches/${batch.id}/items/0`);
    const text = await item.text();
    expect(item.status, text.slice(0, 300)).toBe(200);
    expect(text).toContain(`"input":${deep}`);
    const view = JSON.parse(text.replace(deep, '"deep"'));
    expect(view.status).toBe('failed');
    expect(view.error).toMatch(/nested deeper than 1000 levels/);
    // Item 1 was run again by a worker (and failed again, as `false` does): not stuck behind item 0.
    const other = (await svc.client.json('GET', `/v1/batches/${batch.id}/items/1`)).body;
    expect(other.attempts).toHaveLength(2);
  });
});
