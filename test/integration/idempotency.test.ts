import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { allBatchIds, expectProblem, NDJSON } from './support.js';

/** Idempotency-Key on POST /v1/batches: a retried create answers with the same batch. */
describe('Idempotency-Key', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
  });
  afterAll(async () => svc?.close());

  const create = (body: unknown, key: string, headers: Record<string, string> = {}) =>
    svc.client.json('POST', '/v1/batches', body, { 'idempotency-key': key, ...headers });

  it('same key and same JSON body → 202 with the same batch both times, and one batch exists', async () => {
    const before = await allBatchIds(svc.client);
    const spec = { task: 'rev', items: ['one', 'two'], labels: { idem: 'json' } };
    const first = await create(spec, 'key-json-1');
    const second = await create(spec, 'key-json-1');
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers.get('location')).toBe(`/v1/batches/${first.body.id}`);
    const after = await allBatchIds(svc.client);
    expect(after).toHaveLength(before.length + 1);
    expect(await allBatchIds(svc.client, 'labelSelector=idem=json')).toEqual([first.body.id]);
    // A replay after completion still answers with the batch, now finished.
    await svc.client.waitForPhase(first.body.id);
    const third = await create(spec, 'key-json-1');
    expect(third.status).toBe(202);
    expect(third.body.id).toBe(first.body.id);
    expect(third.body.status.phase).toBe('Succeeded');
  });

  it('same key and a different body → 422 problem, nothing created', async () => {
    const first = await create({ task: 'rev', items: ['a'] }, 'key-json-2');
    expect(first.status).toBe(202);
    const before = await allBatchIds(svc.client);
    const res = await svc.client.request('POST', '/v1/batches', { task: 'rev', items: ['b'] }, { 'idempotency-key': 'key-json-2' });
    const p = await expectProblem(res, 422);
    expect(p.detail).toContain('key-json-2');
    expect(await allBatchIds(svc.client)).toEqual(before);
  });

  it('different keys with the same body create two batches', async () => {
    const spec = { task: 'rev', items: ['a'], labels: { idem: 'two-keys' } };
    const a = await create(spec, 'key-json-3a');
    const b = await create(spec, 'key-json-3b');
    expect(a.body.id).not.toBe(b.body.id);
    expect(await allBatchIds(svc.client, 'labelSelector=idem=two-keys')).toHaveLength(2);
  });

  it('keys are per tenant: another tenant reusing a key gets its own batch', async () => {
    const spec = { task: 'rev', items: ['a'] };
    const mine = await create(spec, 'key-shared');
    const other = await svc.newTenant('idem-other');
    const theirs = await other.json('POST', '/v1/batches', spec, { 'idempotency-key': 'key-shared' });
    expect(theirs.status).toBe(202);
    expect(theirs.body.id).not.toBe(mine.body.id);
    expect(await allBatchIds(other)).toEqual([theirs.body.id]);
  });

  it('concurrent creates with one new key all answer with one batch', async () => {
    const spec = { task: 'rev', items: ['x', 'y'], labels: { idem: 'race' } };
    const answers = await Promise.all(Array.from({ length: 8 }, () => create(spec, 'key-race')));
    for (const a of answers) expect([202, 409]).toContain(a.status);
    const ids = new Set(answers.filter((a) => a.status === 202).map((a) => a.body.id));
    expect(ids.size).toBe(1);
    expect(await allBatchIds(svc.client, 'labelSelector=idem=race')).toEqual([...ids]);
  });

  describe('with NDJSON', () => {
    const body = (items: string[]) => [JSON.stringify({ task: 'rev', labels: { idem: 'ndjson' } }), ...items.map((i) => JSON.stringify(i))].join('\n') + '\n';
    const post = (text: string, key: string) => svc.client.request('POST', '/v1/batches', text, { ...NDJSON, 'idempotency-key': key });

    it('same key and same body → the same batch; a different body → 422', async () => {
      const r1 = await post(body(['a', 'b', 'c']), 'key-nd-1');
      const b1 = await r1.json();
      expect(r1.status, JSON.stringify(b1)).toBe(202);
      const r2 = await post(body(['a', 'b', 'c']), 'key-nd-1');
      const b2 = await r2.json();
      expect(r2.status).toBe(202);
      expect(b2.id).toBe(b1.id);
      expect(b2.status.counts.total).toBe(3);
      expect(await allBatchIds(svc.client, 'labelSelector=idem=ndjson')).toEqual([b1.id]);

      const before = await allBatchIds(svc.client);
      const p = await expectProblem(await post(body(['a', 'b', 'd']), 'key-nd-1'), 422);
      expect(p.detail).toContain('key-nd-1');
      expect(await allBatchIds(svc.client)).toEqual(before);
    });

    it('a failed upload does not use up its key', async () => {
      const p = await expectProblem(await post(`${JSON.stringify({ task: 'rev' })}\n"a"\n{bad\n`, 'key-nd-2'), 422);
      expect(p.errors?.[0].line).toBe(3);
      const ok = await post(body(['fine']), 'key-nd-2');
      expect(ok.status).toBe(202);
    });
  });
});
