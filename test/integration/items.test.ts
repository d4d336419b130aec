import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem } from './support.js';

/** GET …/items (status filter, cursor pages) and GET …/items/{index} with input and attempts. */
describe('items of a batch', () => {
  let svc: TestService;
  let batch: any;
  // Items starting with "bad" fail with exit code 3 and say why on stderr.
  const mixed = `mixed=read x; case "$x" in bad*) echo "noise line"; echo "bad input $x" >&2; exit 3;; esac; echo "ok-$x"`;
  const items = ['good0', 'bad1', 'good2', 'bad3', 'good4', { customId: 'c5', v: 5 }];
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: [mixed] });
    batch = await svc.client.createBatch({ task: 'mixed', items, retry: { backoffLimitPerItem: 1, backoffSeconds: 0 } });
    batch = await svc.client.waitForPhase(batch.id);
  });
  afterAll(async () => svc?.close());

  const page = (qs: string) => svc.client.json('GET', `/v1/batches/${batch.id}/items?${qs}`);

  /** Follows nextCursor from the first page; returns the indexes of every page. */
  const allPages = async (qs: string) => {
    const pages: number[][] = [];
    let cursor: string | null = null;
    do {
      const r = await page(`${qs}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      pages.push(r.body.items.map((i: { index: number }) => i.index));
      cursor = r.body.nextCursor;
      expect(pages.length).toBeLessThan(20);
    } while (cursor);
    return pages;
  };

  it('the batch failed on exactly the bad items', () => {
    expect(batch.status.phase).toBe('Failed');
    expect(batch.status.failedIndexes).toBe('1,3');
    expect(batch.status.completedIndexes).toBe('0,2,4,5');
    expect(batch.status.counts).toMatchObject({ total: 6, succeeded: 4, failed: 2 });
  });

  it('?status=failed lists only the failed items, with their attempts', async () => {
    const r = await page('status=failed');
    expect(r.status).toBe(200);
    expect(r.body.items.map((i: any) => i.index)).toEqual([1, 3]);
    for (const it of r.body.items) {
      expect(it.status).toBe('failed');
      expect(it.attempts).toHaveLength(2);
    }
    expect(r.body.nextCursor).toBeNull();
    expect((await page('status=succeeded')).body.items.map((i: any) => i.index)).toEqual([0, 2, 4, 5]);
    expect((await page('status=pending')).body.items).toEqual([]);
  });

  it('pages with a cursor: limit=2 gives 0-1, 2-3, 4-5 and then no cursor', async () => {
    expect(await allPages('limit=2')).toEqual([[0, 1], [2, 3], [4, 5]]);
    expect(await allPages('limit=4')).toEqual([[0, 1, 2, 3], [4, 5]]);
    expect(await allPages('limit=1&status=failed')).toEqual([[1], [3]]);
  });

  it('a succeeded item has its input, result, customId and one attempt', async () => {
    const r = await svc.client.json('GET', `/v1/batches/${batch.id}/items/5`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ index: 5, customId: 'c5', status: 'succeeded', error: null, input: { customId: 'c5', v: 5 } });
    expect(r.body.result).toBe(`ok-${JSON.stringify({ customId: 'c5', v: 5 })}`);
    expect(r.body.attempts).toHaveLength(1);
    expect(r.body.attempts[0]).toMatchObject({ attempt: 1, outcome: 'succeeded', exitCode: 0 });
    expect(Date.parse(r.body.attempts[0].finishedAt)).toBeGreaterThan(0);
    expect(Date.parse(r.body.finishedAt)).toBeGreaterThanOrEqual(Date.parse(r.body.startedAt));
  });

  it('a failed item has every attempt with its exit code and the tail of stderr', async () => {
    const r = await svc.client.json('GET', `/v1/batches/${batch.id}/items/3`);
    expect(r.status).toBe(200);
    expect(r.body.index).toBe(3);
    expect(r.body.status).toBe('failed');
    expect(r.body.input).toBe('bad3');
    expect(r.body.customId).toBeNull();
    expect(r.body.error).toContain('bad input bad3');
    expect(r.body.attempts.map((a: any) => a.attempt)).toEqual([1, 2]);
    for (const a of r.body.attempts) {
      expect(a.outcome).toBe('failed');
      expect(a.exitCode).toBe(3);
      expect(a.error).toContain('bad input bad3');
      // stdout is the result channel, not the error.
      expect(a.error).not.toContain('noise line');
    }
  });

  it('results agree with the items', async () => {
    const results = await svc.client.results(batch.id);
    expect(results.map((r) => [r.index, r.status, r.attempts])).toEqual([
      [0, 'succeeded', 1],
      [1, 'failed', 2],
      [2, 'succeeded', 1],
      [3, 'failed', 2],
      [4, 'succeeded', 1],
      [5, 'succeeded', 1],
    ]);
    expect(results[0].result).toBe('ok-good0');
    expect(results[1].error).toContain('bad input bad1');
  });

  it('an index out of range → 404 problem; a malformed index → 422', async () => {
    await expectProblem(await svc.client.request('GET', `/v1/batches/${batch.id}/items/6`), 404);
    await expectProblem(await svc.client.request('GET', `/v1/batches/${batch.id}/items/100000`), 404);
    await expectProblem(await svc.client.request('GET', `/v1/batches/${batch.id}/items/-1`), 422);
    await expectProblem(await svc.client.request('GET', `/v1/batches/${batch.id}/items/first`), 422);
  });

  it('a cursor the API did not make → 422 /query/cursor, not a silently empty page', async () => {
    const r = await svc.client.request('GET', `/v1/batches/${batch.id}/items?cursor=${encodeURIComponent('not-a-cursor')}`);
    await expectProblem(r, 422, '/query/cursor');
  });
});
