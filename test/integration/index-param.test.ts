import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem } from './support.js';

/**
 * `{index}` is a canonical decimal: `0` or `[1-9][0-9]*`, at most 2^53−1. Loose forms were once
 * coerced (`0x1`, `1e0` and `%20` answered items 1, 1 and 0, the result PUT too).
 */
describe('item index path parameter', () => {
  let svc: TestService;
  let id: string;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
    id = (await svc.client.createBatch({ task: 'rev', items: ['abc', 'de'] })).id;
    await svc.client.waitForPhase(id);
  });
  afterAll(async () => svc?.close());

  const routes: [string, (index: string) => string][] = [
    ['GET', (i) => `/v1/batches/${id}/items/${i}`],
    ['GET', (i) => `/v1/batches/${id}/items/${i}/input`],
    ['PUT', (i) => `/v1/batches/${id}/items/${i}/result`],
  ];
  const send = (method: string, path: string) =>
    svc.client.request(method, path, method === 'PUT' ? '"forged"' : undefined, method === 'PUT' ? { 'content-type': 'application/json' } : {});

  const loose = ['%20', '0x1', '0b1', '0o1', '1e0', '01', '00', '-1', '-0', '+1', '1.0', '1.', '.5', '%2B1', ' 1', '1%20', 'Infinity', 'NaN', '9007199254740992', '99999999999999999999'];
  for (const index of loose) {
    it(`${JSON.stringify(index)} → 422 /path/index on every {index} route`, async () => {
      for (const [method, route] of routes) {
        const p = await expectProblem(await send(method, route(index)), 422, '/path/index');
        expect(p.detail, `${method} ${route(index)}`).toMatch(/index/);
      }
    });
  }

  it('canonical indexes answer as before, and results were not overwritten', async () => {
    expect((await svc.client.json('GET', `/v1/batches/${id}/items/0`)).body.result).toBe('cba');
    expect((await svc.client.json('GET', `/v1/batches/${id}/items/1/input`)).body).toBe('de');
    expect((await svc.client.json('PUT', `/v1/batches/${id}/items/1/result`, 'forged')).body).toEqual({ recorded: false });
    expect((await svc.client.json('GET', `/v1/batches/${id}/items/1`)).body.result).toBe('ed');
    for (const [method, route] of routes) await expectProblem(await send(method, route('9007199254740991')), 404);
    for (const [method, route] of routes) await expectProblem(await send(method, route('2')), 404);
  });

  it('the OpenAPI parameter declares the pattern and the maximum', async () => {
    const yaml = await (await fetch(`${svc.url}/openapi.yaml`)).text();
    expect(yaml).toContain("pattern: ^(0|[1-9][0-9]*)$");
  });
});
