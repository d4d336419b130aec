import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { allBatchIds, expectProblem, NDJSON, ndjsonStream, queryDb } from './support.js';

/** Configured limits and broken NDJSON uploads: 413/422 naming the item or line, and nothing left behind. */
describe('bad input: limits and NDJSON uploads', () => {
  const MAX_ITEM = 64;
  const MAX_BODY = 2048;
  const MAX_ITEMS = 8000;
  let svc: TestService;
  let before: string[];
  let itemRowsBefore: number;
  beforeAll(async () => {
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      env: { FANOUT_MAX_ITEM_BYTES: String(MAX_ITEM), FANOUT_MAX_BODY_BYTES: String(MAX_BODY), FANOUT_MAX_ITEMS: String(MAX_ITEMS) },
    });
    await svc.client.createBatch({ task: 'rev', items: ['x'] });
    before = await allBatchIds(svc.client);
    itemRowsBefore = await itemRows();
  });
  afterAll(async () => svc?.close());

  const itemRows = async () => (await queryDb<{ n: number }>(svc, 'SELECT count(*) AS n FROM items'))[0].n;
  /** The list, the item rows and the hidden upload rows are all as they were. */
  const unchanged = async () => {
    expect(await allBatchIds(svc.client)).toEqual(before);
    expect(await queryDb(svc, "SELECT id FROM batches WHERE state = 'uploading'")).toEqual([]);
    expect(await itemRows()).toBe(itemRowsBefore);
  };
  const postNdjson = (body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
    svc.client.request('POST', '/v1/batches', body, { ...NDJSON, ...headers });

  it('an item over the item limit → 413 with pointer /items/N and the limit', async () => {
    const res = await svc.client.request('POST', '/v1/batches', { task: 'rev', items: ['a', 'b', 'x'.repeat(MAX_ITEM + 10)] });
    const p = await expectProblem(res, 413, '/items/2');
    expect(p.detail).toContain(String(MAX_ITEM));
    await unchanged();
  });

  it('a JSON body over the body limit → 413 naming the limit', async () => {
    // Small items, few of them: only the labels make the body large.
    const labels = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`label-${i}`, 'v'.repeat(50)]));
    const body = JSON.stringify({ task: 'rev', items: ['a'], labels });
    expect(body.length).toBeGreaterThan(MAX_BODY);
    const p = await expectProblem(await svc.client.request('POST', '/v1/batches', body, { 'content-type': 'application/json' }), 413);
    expect(p.detail).toContain(String(MAX_BODY));
    await unchanged();
  });

  it('too many items in JSON → 413 /items naming the limit', async () => {
    // Under the body limit: the item count alone is over.
    const small = await startTestService({ redisUrl: inject('redisUrl'), env: { FANOUT_MAX_ITEMS: '3' } });
    try {
      const res = await small.client.request('POST', '/v1/batches', { task: 'rev', items: ['a', 'b', 'c', 'd'] });
      const p = await expectProblem(res, 413, '/items');
      expect(p.detail).toContain('3');
      expect(await allBatchIds(small.client)).toEqual([]);
      expect((await small.client.request('POST', '/v1/batches', { task: 'rev', items: ['a', 'b', 'c'] })).status).toBe(202);
    } finally {
      await small.close();
    }
  });

  it('too many items in NDJSON → 413 at the first line over the limit', async () => {
    const body = ndjsonStream((n) => (n === 0 ? JSON.stringify({ task: 'rev' }) : n <= MAX_ITEMS + 5 ? JSON.stringify(`i${n}`) : undefined));
    const p = await expectProblem(await postNdjson(body), 413);
    expect(p.errors?.[0].line).toBe(MAX_ITEMS + 2);
    expect(p.detail).toContain(String(MAX_ITEMS));
    await unchanged();
  });

  it('an NDJSON item over the item limit → 413 naming its line', async () => {
    const body = [JSON.stringify({ task: 'rev' }), '"a"', '"b"', JSON.stringify('y'.repeat(MAX_ITEM + 1)), '"c"'].join('\n') + '\n';
    const p = await expectProblem(await postNdjson(body), 413);
    expect(p.errors?.[0].line).toBe(4);
    await unchanged();
  });

  it('NDJSON malformed at line N, after thousands of stored items → 422 line N, no batch and no rows left', async () => {
    // More lines than one ingest chunk, so some items were already written when line N fails.
    const N = 7003;
    const body = ndjsonStream((n) => {
      if (n === 0) return JSON.stringify({ task: 'rev', labels: { upload: 'broken' } });
      if (n === N - 1) return '{"not": json';
      return n < N + 50 ? JSON.stringify({ n }) : undefined;
    });
    const p = await expectProblem(await postNdjson(body), 422);
    expect(p.errors?.[0].line).toBe(N);
    expect(p.detail).toContain(`line ${N}`);
    await unchanged();
    expect(await allBatchIds(svc.client, 'labelSelector=upload')).toEqual([]);
  });

  it('NDJSON whose first line is an invalid spec → 422 on line 1', async () => {
    for (const first of [JSON.stringify({ task: 'rev', parallelism: 'many' }), JSON.stringify({ task: 'rev', items: ['a'] }), 'not json', JSON.stringify({ task: 'nope' })]) {
      const p = await expectProblem(await postNdjson(`${first}\n"a"\n"b"\n`), 422);
      expect(p.errors?.[0].line, first).toBe(1);
    }
    await unchanged();
  });

  it('NDJSON with a spec and no items → 422', async () => {
    const p = await expectProblem(await postNdjson(`${JSON.stringify({ task: 'rev' })}\n\n`), 422);
    expect(p.detail).toMatch(/at least one item/);
    await unchanged();
  });

  it('an empty NDJSON body → 422 on line 1', async () => {
    const p = await expectProblem(await postNdjson(''), 422);
    expect(p.errors?.[0].line).toBe(1);
    await unchanged();
  });

  it('an NDJSON item with a bad template field → 422 naming the item', async () => {
    const spec = { task: 'rev', template: { env: { URL: '{{ url }}' } } };
    const body = [JSON.stringify(spec), JSON.stringify({ url: 'a' }), JSON.stringify({ nourl: 'b' })].join('\n');
    await expectProblem(await postNdjson(body), 422, '/items/1');
    await unchanged();
  });
});
