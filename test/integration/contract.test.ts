import http from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import YAML from 'yaml';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem } from './support.js';

type Operation = { parameters?: { in: string; name: string }[]; requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> };

/** Where the contract and the server disagreed (issue 10): unsupported methods, undeclared statuses, empty PATCH bodies. */
describe('contract: methods, declared statuses and bodies', () => {
  let svc: TestService;
  let doc: { paths: Record<string, Record<string, Operation>> };
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), env: { FANOUT_WEBHOOK_ALLOW: '127.0.0.1' } });
    doc = YAML.parse(await (await fetch(`${svc.url}/openapi.yaml`)).text());
  });
  afterAll(async () => svc?.close());

  /** node:http, because fetch refuses TRACE; answers a Response like fetch. */
  const raw = (method: string, path: string, auth = true) =>
    new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = auth ? { authorization: `Bearer ${svc.apiKey}` } : {};
      const req = http.request(`${svc.url}${path}`, { method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode, headers: h }));
        });
      });
      req.on('error', reject);
      req.end();
    });

  const operations = () =>
    Object.entries(doc.paths).flatMap(([p, item]) => Object.entries(item).map(([method, op]) => ({ name: `${method.toUpperCase()} ${p}`, op })));

  it('an unsupported method on an existing path answers 405 problem+json with Allow; an unknown path stays 404', async () => {
    const cases: [string, string, string][] = [
      ['TRACE', '/healthz', 'GET, HEAD'],
      ['POST', '/metrics', 'GET, HEAD'],
      ['PUT', '/v1/batches', 'DELETE, GET, HEAD, POST'],
      ['TRACE', '/v1/webhook-endpoints', 'GET, HEAD, POST'],
      ['PUT', '/v1/webhook-endpoints/w123', 'DELETE, GET, HEAD, PATCH'],
      ['GET', '/v1/batch-webhook-secret/rotate', 'POST'],
      ['DELETE', '/v1/batches/b123/items/0/result', 'PUT'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await raw(method, path);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      const p = await expectProblem(res, 405);
      expect(p.detail).toContain(method);
    }
    await expectProblem(await raw('TRACE', '/v1/no-such-thing'), 404);
    await expectProblem(await svc.client.request('GET', '/v1/batches/b1/items/0/nothing'), 404);
    // Without an API key a /v1 path still answers 401 first, as every /v1 call does.
    expect((await raw('PUT', '/v1/batches', false)).status).toBe(401);
  });

  it('limit out of range answers 422 on both webhook-delivery lists, and every list with a limit declares 422', async () => {
    const ep = await svc.client.json('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/h' });
    const batch = await svc.client.createBatch({ task: 'rev', items: ['a'] });
    for (const path of [`/v1/webhook-endpoints/${ep.body.id}/webhook-deliveries`, `/v1/batches/${batch.id}/webhook-deliveries`]) {
      for (const limit of ['0', '501', 'x']) await expectProblem(await svc.client.request('GET', `${path}?limit=${limit}`), 422, '/query/limit');
    }
    const withLimit = operations().filter(({ op }) => op.parameters?.some((p) => p.in === 'query' && p.name === 'limit'));
    expect(withLimit.length).toBeGreaterThanOrEqual(5);
    for (const { name, op } of withLimit) expect(Object.keys(op.responses), name).toContain('422');
    await svc.client.request('DELETE', `/v1/webhook-endpoints/${ep.body.id}`);
  });

  it('malformed JSON answers 400 on the webhook-endpoint bodies, and every JSON body declares 400', async () => {
    const ep = await svc.client.json('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/h' });
    const json = { 'content-type': 'application/json' };
    for (const [method, path] of [['POST', '/v1/webhook-endpoints'], ['PATCH', `/v1/webhook-endpoints/${ep.body.id}`]]) {
      const p = await expectProblem(await svc.client.request(method, path, '{"url": ', json), 400);
      expect(p.type).toMatch(/malformed-json$/);
    }
    const withJsonBody = operations().filter(({ op }) => op.requestBody?.content['application/json']);
    expect(withJsonBody.length).toBeGreaterThanOrEqual(6);
    for (const { name, op } of withJsonBody) expect(Object.keys(op.responses), name).toContain('400');
    await svc.client.request('DELETE', `/v1/webhook-endpoints/${ep.body.id}`);
  });

  it('PATCH with no body or an empty body is refused and changes nothing', async () => {
    const ep = await svc.client.json('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/h', description: 'kept' });
    const sched = await svc.client.json('POST', '/v1/schedules', { schedule: '0 0 1 1 *', batchTemplate: { task: 'rev', items: ['a'] } });
    expect(sched.status).toBe(201);
    for (const path of [`/v1/webhook-endpoints/${ep.body.id}`, `/v1/schedules/${sched.body.id}`]) {
      const none = await svc.client.request('PATCH', path);
      expect([400, 415, 422], path).toContain(none.status);
      await expectProblem(none, none.status);
      const empty = await svc.client.request('PATCH', path, '', { 'content-type': 'application/json' });
      await expectProblem(empty, 400);
      const op = doc.paths[path.startsWith('/v1/schedules') ? '/v1/schedules/{id}' : '/v1/webhook-endpoints/{id}'].patch;
      expect(Object.keys(op.responses), path).toContain(String(none.status));
      expect((op.requestBody as { required?: boolean }).required, path).toBe(true);
    }
    expect((await svc.client.json('GET', `/v1/webhook-endpoints/${ep.body.id}`)).body.description).toBe('kept');
    await svc.client.request('DELETE', `/v1/webhook-endpoints/${ep.body.id}`);
    await svc.client.request('DELETE', `/v1/schedules/${sched.body.id}`);
  });

  it('a cursor is exactly what the API wrote: padded or decorated forms of a valid one are refused', async () => {
    const page = await svc.client.json('GET', '/v1/batches?limit=1');
    expect(page.status).toBe(200);
    const valid = Buffer.from('b1').toString('base64url');
    expect((await svc.client.request('GET', `/v1/batches?cursor=${valid}`)).status).toBe(200);
    for (const cursor of [`${valid}=`, `${valid}!`, `.${valid}`, `${valid}%20`]) {
      await expectProblem(await svc.client.request('GET', `/v1/batches?cursor=${cursor}`), 422, '/query/cursor');
    }
  });

  it('the spec is as strict as the server: labels, selectors, cursors, names', () => {
    const schemas = (doc as unknown as { components: { schemas: Record<string, any> } }).components.schemas;
    expect(schemas.Labels.propertyNames.pattern).toBeTruthy();
    expect(schemas.Labels.additionalProperties).toMatchObject({ maxLength: 63, pattern: expect.any(String) });
    const header = schemas.BatchSpecHeader.properties;
    expect(header.namespace).toMatchObject({ minLength: 1, maxLength: 63, pattern: expect.any(String) });
    expect(JSON.stringify(schemas)).toMatch(/"serviceAccountName":\{"type":"string","minLength":1,"maxLength":253,"pattern"/);
    for (const { name, op } of operations()) {
      for (const p of op.parameters ?? []) {
        const schema = (p as { schema?: Record<string, unknown> }).schema ?? {};
        if (p.name === 'cursor') expect(schema.pattern, name).toBe('^[A-Za-z0-9_-]*$');
        if (p.name === 'labelSelector') expect(schema.maxLength, name).toBe(8192);
      }
    }
  });

  it('a request head over 16 KiB (a very long query) answers 431 problem+json, declared everywhere', async () => {
    const res = await svc.client.request('GET', `/v1/batches?labelSelector=${'%C3%83'.repeat(4000)}`);
    const p = await expectProblem(res, 431);
    expect(p.type).toMatch(/headers-too-large$/);
    for (const { name, op } of operations()) expect(Object.keys(op.responses), name).toContain('431');
    expect((await svc.client.json('GET', '/v1/batches')).status).toBe(200);
  });
});
