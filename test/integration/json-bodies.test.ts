import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { allBatchIds, expectProblem, NDJSON, queryDb } from './support.js';

/**
 * Every body read whole is bounded while it is read, and every JSON body and NDJSON line is
 * refused (never silently changed) when it is too deep, not UTF-8, holds a number that overflows,
 * or a `__proto__` key a schema would drop. Nothing is stored by a refused request.
 */
describe('JSON bodies: size, depth and faithful parsing', () => {
  const MAX_BODY = 4096;
  let svc: TestService;
  let scheduleId: string;
  let endpointId: string;
  let batchId: string;
  let snapshot: () => Promise<unknown>;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), env: { FANOUT_MAX_BODY_BYTES: String(MAX_BODY), FANOUT_WEBHOOK_ALLOW: '127.0.0.1' } });
    const schedule = await svc.client.json('POST', '/v1/schedules', { schedule: '0 0 1 1 *', suspend: true, batchTemplate: { task: 'rev', items: ['a'] } });
    expect(schedule.status, JSON.stringify(schedule.body)).toBe(201);
    scheduleId = schedule.body.id;
    const endpoint = await svc.client.json('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook', description: 'kept' });
    expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(201);
    endpointId = endpoint.body.id;
    batchId = (await svc.client.createBatch({ task: 'rev', items: ['x'] })).id;
    await svc.client.waitForPhase(batchId);
    snapshot = async () => ({
      batches: await allBatchIds(svc.client),
      items: await queryDb(svc, 'SELECT count(*) AS n FROM items'),
      schedules: (await svc.client.json('GET', '/v1/schedules')).body.items,
      endpoints: (await svc.client.json('GET', '/v1/webhook-endpoints')).body.items,
    });
  });
  afterAll(async () => svc?.close());

  const send = (method: string, path: string, body: string | Uint8Array | ReadableStream<Uint8Array>, contentType = 'application/json') =>
    svc.client.request(method, path, body, { 'content-type': contentType });

  describe('one body limit for every JSON body (finding 2)', () => {
    const big = JSON.stringify({ description: 'd'.repeat(MAX_BODY) });
    const routes = () => [
      ['POST', '/v1/webhook-endpoints', JSON.stringify({ url: 'http://127.0.0.1:9/hook', description: 'd'.repeat(MAX_BODY) })],
      ['PATCH', `/v1/webhook-endpoints/${endpointId}`, big],
      ['POST', '/v1/schedules', JSON.stringify({ schedule: '0 0 1 1 *', batchTemplate: { task: 'rev', items: Array.from({ length: 2000 }, (_, i) => i) } })],
      ['PATCH', `/v1/schedules/${scheduleId}`, JSON.stringify({ batchTemplate: { task: 'rev', items: Array.from({ length: 2000 }, (_, i) => i) } })],
      ['POST', `/v1/batches/${batchId}/retry`, big],
      ['POST', '/v1/batches', JSON.stringify({ task: 'rev', items: Array.from({ length: 2000 }, (_, i) => i) })],
    ] as const;

    it('over FANOUT_MAX_BODY_BYTES with Content-Length → 413 naming the limit, nothing changed', async () => {
      const before = await snapshot();
      for (const [method, path, body] of routes()) {
        expect(body.length).toBeGreaterThan(MAX_BODY);
        const p = await expectProblem(await send(method, path, body), 413);
        expect(p.detail, `${method} ${path}`).toContain(String(MAX_BODY));
        expect(p.detail).toContain('FANOUT_MAX_BODY_BYTES');
      }
      expect(await snapshot()).toEqual(before);
    });

    it('a streamed body without Content-Length is cut off at the limit → 413', async () => {
      const before = await snapshot();
      for (const [method, path] of routes()) {
        let sent = 0;
        const endless = new ReadableStream<Uint8Array>({
          pull(controller) {
            // 16 times the limit, and not JSON: read whole, it would be a 400, not a 413.
            if (sent > 16 * MAX_BODY) return controller.close();
            controller.enqueue(new TextEncoder().encode(sent === 0 ? '{"description":"' : 'x'.repeat(4096)));
            sent += 4096;
          },
        });
        const res = await send(method, path, endless).catch((e) => { throw new Error(`${method} ${path}: ${e.cause}`); });
        const p = await expectProblem(res, 413);
        expect(p.detail).toContain(String(MAX_BODY));
      }
      expect(await snapshot()).toEqual(before);
    });

    it('a body of exactly FANOUT_MAX_BODY_BYTES is read; one byte more is not', async () => {
      const bodyOf = (bytes: number) => {
        const empty = JSON.stringify({ task: 'rev', items: [''] });
        return JSON.stringify({ task: 'rev', items: ['p'.repeat(bytes - empty.length)] });
      };
      expect(bodyOf(MAX_BODY).length).toBe(MAX_BODY);
      const r = await send('POST', '/v1/batches', bodyOf(MAX_BODY));
      expect(r.status, await r.clone().text()).toBe(202);
      await svc.client.request('DELETE', `/v1/batches/${((await r.json()) as { id: string }).id}`);
      await expectProblem(await send('POST', '/v1/batches', bodyOf(MAX_BODY + 1)), 413);
    });
  });

  describe('one nesting-depth limit (finding 3)', () => {
    const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

    it.each([65, 10_000, 100_000])('a JSON batch item %i levels deep → 422 at /items/0…, nothing stored', async (depth) => {
      const before = await snapshot();
      // 100,000 levels is over the body limit of this service: use one with the default limit.
      const body = `{"task":"rev","items":[${nested(depth)}]}`;
      const target = body.length > MAX_BODY ? await startTestService({ redisUrl: inject('redisUrl') }) : svc;
      try {
        const res = await target.client.request('POST', '/v1/batches', body, { 'content-type': 'application/json' });
        const p = await expectProblem(res, 422);
        expect(p.errors?.[0].pointer).toMatch(/^\/items\/0(\/0)*$/);
        expect(p.detail).toContain('64-level limit (FANOUT_MAX_JSON_DEPTH)');
        if (target !== svc) expect(await allBatchIds(target.client)).toEqual([]);
      } finally {
        if (target !== svc) await target.close();
      }
      expect(await snapshot()).toEqual(before);
    });

    it('a body exactly at the depth limit is accepted', async () => {
      // object (1) → items (2) → an item 62 levels deep: 64 in all.
      const r = await svc.client.request('POST', '/v1/batches', `{"task":"rev","items":[${nested(62)}]}`, { 'content-type': 'application/json' });
      expect(r.status, await r.clone().text()).toBe(202);
      const id = ((await r.json()) as { id: string }).id;
      await svc.client.waitForPhase(id, ['Succeeded']);
      const item = await svc.client.json('GET', `/v1/batches/${id}/items/0`);
      expect(item.status).toBe(200);
      expect(JSON.stringify(item.body.input)).toBe(nested(62));
      await svc.client.request('DELETE', `/v1/batches/${id}`);
    });

    it('an NDJSON item 100,000 levels deep → 422 on its line, with a pointer (was 202 and Pending forever)', async () => {
      const before = await snapshot();
      const body = `{"task":"rev"}\n"a"\n${nested(100_000)}\n`;
      const p = await expectProblem(await send('POST', '/v1/batches', body, NDJSON['content-type']), 422);
      expect(p.errors?.[0]).toMatchObject({ line: 3 });
      expect(p.errors?.[0].pointer).toMatch(/^\/items\/1(\/0)+$/);
      expect(await snapshot()).toEqual(before);
    });

    it('an NDJSON spec line too deep → 422 on line 1', async () => {
      const p = await expectProblem(await send('POST', '/v1/batches', `{"task":"rev","labels":{"a":${nested(80)}}}\n"a"\n`, NDJSON['content-type']), 422);
      expect(p.errors?.[0]).toMatchObject({ line: 1 });
      expect(p.errors?.[0].pointer).toMatch(/^\/labels\/a(\/0)*$/);
      expect(p.detail).toContain('64-level limit');
    });

    it('FANOUT_MAX_JSON_DEPTH sets the limit: NDJSON lines count from the line, JSON bodies from the body', async () => {
      const shallow = await startTestService({ redisUrl: inject('redisUrl'), env: { FANOUT_MAX_JSON_DEPTH: '4' } });
      try {
        const post = (body: string, type: string) => shallow.client.request('POST', '/v1/batches', body, { 'content-type': type });
        expect((await post(`{"task":"rev"}\n${nested(4)}\n`, NDJSON['content-type'])).status).toBe(202);
        const p = await expectProblem(await post(`{"task":"rev"}\n${nested(5)}\n`, NDJSON['content-type']), 422, '/items/0/0/0/0/0');
        expect(p.detail).toContain('4-level limit (FANOUT_MAX_JSON_DEPTH)');
        expect((await post(`{"task":"rev","items":[${nested(2)}]}`, 'application/json')).status).toBe(202);
        await expectProblem(await post(`{"task":"rev","items":[${nested(3)}]}`, 'application/json'), 422, '/items/0/0/0');
      } finally {
        await shallow.close();
      }
    });

    it('a schedule template and a webhook patch too deep → 422', async () => {
      const before = await snapshot();
      await expectProblem(await send('POST', '/v1/schedules', `{"schedule":"0 0 1 1 *","batchTemplate":{"task":"rev","items":[${nested(70)}]}}`), 422);
      const p = await expectProblem(await send('PATCH', `/v1/webhook-endpoints/${endpointId}`, `{"description":${nested(70)}}`), 422);
      expect(p.errors?.[0].pointer).toMatch(/^\/description(\/0)*$/);
      expect(await snapshot()).toEqual(before);
    });
  });

  describe('refusal instead of silent change (finding 6)', () => {
    it('invalid UTF-8 in a JSON body → 422 naming the field', async () => {
      const before = await snapshot();
      const bytes = Buffer.concat([Buffer.from('{"task":"rev","name":"ab'), Buffer.from([0xff]), Buffer.from('cd","items":["a"]}')]);
      const p = await expectProblem(await send('POST', '/v1/batches', new Uint8Array(bytes)), 422, '/name');
      expect(p.detail).toMatch(/UTF-8/);
      const inItem = Buffer.concat([Buffer.from('{"task":"rev","items":["a","'), Buffer.from([0xc3, 0x28]), Buffer.from('"]}')]);
      await expectProblem(await send('POST', '/v1/batches', new Uint8Array(inItem)), 422, '/items/1');
      const inPatch = Buffer.concat([Buffer.from('{"description":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]);
      await expectProblem(await send('PATCH', `/v1/webhook-endpoints/${endpointId}`, new Uint8Array(inPatch)), 422, '/description');
      expect(await snapshot()).toEqual(before);
    });

    it('a number that overflows to Infinity → 422 with its pointer, JSON and NDJSON', async () => {
      const before = await snapshot();
      await expectProblem(await send('POST', '/v1/batches', '{"task":"rev","items":[1,{"n":1e400}]}'), 422, '/items/1/n');
      await expectProblem(await send('POST', '/v1/batches', '{"task":"rev","parallelism":-1e999,"items":[1]}'), 422, '/parallelism');
      const p = await expectProblem(await send('POST', '/v1/batches', '{"task":"rev"}\n[1e400]\n', NDJSON['content-type']), 422, '/items/0/0');
      expect(p.errors?.[0].line).toBe(2);
      expect(await snapshot()).toEqual(before);
    });

    it('a __proto__ key outside an item → 422 with its pointer, JSON and NDJSON', async () => {
      const before = await snapshot();
      await expectProblem(await send('POST', '/v1/batches', '{"task":"rev","labels":{"__proto__":"x"},"items":["a"]}'), 422, '/labels/__proto__');
      await expectProblem(await send('POST', '/v1/batches', '{"task":"rev","template":{"env":{"__proto__":"x"}},"items":["a"]}'), 422, '/template/env/__proto__');
      await expectProblem(await send('POST', '/v1/schedules', '{"schedule":"0 0 1 1 *","labels":{"__proto__":"x"},"batchTemplate":{"task":"rev","items":["a"]}}'), 422, '/labels/__proto__');
      await expectProblem(await send('PATCH', `/v1/schedules/${scheduleId}`, '{"labels":{"\\u005f_proto__":"x"}}'), 422, '/labels/__proto__');
      const p = await expectProblem(await send('POST', '/v1/batches', '{"task":"rev","labels":{"__proto__":"x"}}\n"a"\n', NDJSON['content-type']), 422, '/labels/__proto__');
      expect(p.errors?.[0].line).toBe(1);
      expect(await snapshot()).toEqual(before);
    });

    it('__proto__, constructor and prototype keys inside an item are kept exactly, JSON and NDJSON', async () => {
      const item = '{"__proto__":{"polluted":true},"constructor":"c","prototype":{"p":1},"n":1}';
      const json = await send('POST', '/v1/batches', `{"task":"echo","items":[${item}]}`);
      expect(json.status, await json.clone().text()).toBe(202);
      const ndjson = await send('POST', '/v1/batches', `{"task":"echo"}\n${item}\n`, NDJSON['content-type']);
      expect(ndjson.status, await ndjson.clone().text()).toBe(202);
      for (const res of [json, ndjson]) {
        const id = ((await res.json()) as { id: string }).id;
        await svc.client.waitForPhase(id, ['Succeeded']);
        // JSON.parse keeps a __proto__ key as an own property, and JSON.stringify writes it back.
        const view = await svc.client.json('GET', `/v1/batches/${id}/items/0`);
        expect(JSON.stringify(view.body.input)).toBe(item);
        expect(Object.keys(view.body.input)).toEqual(['__proto__', 'constructor', 'prototype', 'n']);
        await svc.client.request('DELETE', `/v1/batches/${id}`);
      }
    });
  });
});
