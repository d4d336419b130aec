import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import YAML from 'yaml';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * Live answers checked against the OpenAPI document the server serves: the status must be one the
 * operation declares, and the body must match the schema declared for that status and media type.
 */
type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>; components: { schemas: Record<string, unknown> } };

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** OpenAPI 3.1 schemas are JSON Schema 2020-12; components become $defs so each schema stands alone. */
function schemaCompiler(doc: Doc) {
  const ajv = addFormats(new Ajv2020({ allErrors: true, strict: true }));
  ajv.addKeyword('example');
  const relink = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(relink);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' ? x.replace('#/components/schemas/', '#/$defs/') : relink(x)]),
      );
    }
    return v;
  };
  const defs = relink(doc.components.schemas) as Record<string, unknown>;
  const cache = new Map<string, ValidateFunction>();
  return (method: string, pathTemplate: string, status: number, mediaType: string): ValidateFunction => {
    const key = `${method} ${pathTemplate} ${status} ${mediaType}`;
    const op = doc.paths[pathTemplate]?.[method.toLowerCase()];
    if (!op) throw new Error(`the document has no operation ${method} ${pathTemplate}`);
    const declared = op.responses[String(status)];
    if (!declared) throw new Error(`${method} ${pathTemplate} answered ${status}, which the document does not declare (declared: ${Object.keys(op.responses).join(', ')})`);
    const schema = declared.content?.[mediaType]?.schema;
    if (schema === undefined) throw new Error(`${key}: no schema declared for ${mediaType}`);
    if (!cache.has(key)) cache.set(key, ajv.compile({ ...(relink(schema) as object), $defs: defs }));
    return cache.get(key)!;
  };
}

describe('responses conform to the served OpenAPI document', () => {
  let svc: TestService;
  let validatorFor: ReturnType<typeof schemaCompiler>;
  let done: any;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev', 'fail=echo oops >&2; exit 4'] });
    const res = await fetch(`${svc.url}/openapi.yaml`);
    expect(res.status).toBe(200);
    const doc = YAML.parse(await res.text());
    expect(doc.openapi).toMatch(/^3\.1\./);
    validatorFor = schemaCompiler(doc);
    const b = await svc.client.createBatch({ name: 'conf', labels: { suite: 'openapi' }, task: 'fail', items: ['a', { customId: 'b1', x: 1 }], retry: { backoffLimitPerItem: 1, backoffSeconds: 0 } });
    done = await svc.client.waitForPhase(b.id);
  });
  afterAll(async () => svc?.close());

  /** Sends a request and checks status and body against the operation `method pathTemplate`. */
  const conform = async (method: string, pathTemplate: string, p: string, body?: unknown, headers?: Record<string, string>) => {
    const res = await svc.client.request(method, p, body, headers);
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0].trim();
    const text = await res.text();
    const validate = validatorFor(method, pathTemplate, res.status, mediaType);
    const values = mediaType === 'application/x-ndjson' ? text.split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [JSON.parse(text)];
    for (const v of values) expect(validate(v) ? null : { body: v, errors: validate.errors }).toBeNull();
    return { status: res.status, values };
  };

  it('create → 202 Batch', async () => {
    const r = await conform('POST', '/v1/batches', '/v1/batches', { task: 'rev', items: ['x'], labels: { suite: 'openapi' } });
    expect(r.status).toBe(202);
  });

  it('create with NDJSON → 202 Batch', async () => {
    const r = await conform('POST', '/v1/batches', '/v1/batches', `{"task":"rev"}\n"y"\n`, { 'content-type': 'application/x-ndjson' });
    expect(r.status).toBe(202);
  });

  it('get → 200 Batch, for a finished batch with conditions', async () => {
    const r = await conform('GET', '/v1/batches/{id}', `/v1/batches/${done.id}`);
    expect(r.status).toBe(200);
    expect(r.values[0].status.conditions.length).toBeGreaterThan(0);
  });

  it('list → 200 BatchList, with and without a next cursor', async () => {
    expect((await conform('GET', '/v1/batches', '/v1/batches?limit=1')).values[0].nextCursor).toBeTruthy();
    expect((await conform('GET', '/v1/batches', '/v1/batches?labelSelector=suite%3Dopenapi')).status).toBe(200);
  });

  it('items → 200 ItemList with failed attempts; item → 200 Item with input', async () => {
    const list = await conform('GET', '/v1/batches/{id}/items', `/v1/batches/${done.id}/items?limit=1`);
    expect(list.values[0].items[0].attempts.length).toBe(2);
    const one = await conform('GET', '/v1/batches/{id}/items/{index}', `/v1/batches/${done.id}/items/1`);
    expect(one.values[0].input).toEqual({ customId: 'b1', x: 1 });
  });

  it('results → NDJSON lines that are ResultLines', async () => {
    const r = await conform('GET', '/v1/batches/{id}/results', `/v1/batches/${done.id}/results`);
    expect(r.values).toHaveLength(2);
  });

  it('actions → 200 Batch or a 409 Problem', async () => {
    const b = await svc.client.createBatch({ task: 'rev', items: ['z'] });
    await svc.client.waitForPhase(b.id);
    expect((await conform('POST', '/v1/batches/{id}/retry', `/v1/batches/${b.id}/retry`)).status).toBe(409);
    expect((await conform('POST', '/v1/batches/{id}/retry', `/v1/batches/${done.id}/retry`)).status).toBe(200);
    expect((await conform('POST', '/v1/batches/{id}/cancel', `/v1/batches/${done.id}/cancel`)).status).toBeOneOf([200, 409]);
  });

  const problems: [string, string, string, unknown, Record<string, string> | undefined, number][] = [
    ['POST', '/v1/batches', '/v1/batches', { task: 'rev', items: [], parallelsim: 2 }, undefined, 422],
    ['POST', '/v1/batches', '/v1/batches', { task: 'unknown', items: ['a'] }, undefined, 422],
    ['POST', '/v1/batches', '/v1/batches', '{"task":', { 'content-type': 'application/json' }, 400],
    ['POST', '/v1/batches', '/v1/batches', 'a,b', { 'content-type': 'text/csv' }, 415],
    ['POST', '/v1/batches', '/v1/batches', `{"task":"rev"}\n"a"\n{oops\n`, { 'content-type': 'application/x-ndjson' }, 422],
    ['GET', '/v1/batches', '/v1/batches?labelSelector=a%20b', undefined, undefined, 400],
    ['GET', '/v1/batches', '/v1/batches?limit=0', undefined, undefined, 422],
    ['DELETE', '/v1/batches', '/v1/batches?labelSelector=%3D', undefined, undefined, 400],
    ['DELETE', '/v1/batches', '/v1/batches', undefined, undefined, 422],
    ['GET', '/v1/batches/{id}', '/v1/batches/b000000000nothere000', undefined, undefined, 404],
    ['GET', '/v1/batches/{id}/items', '/v1/batches/b000000000nothere000/items', undefined, undefined, 404],
    ['GET', '/v1/batches/{id}/items/{index}', '/v1/batches/b000000000nothere000/items/0', undefined, undefined, 404],
  ];
  for (const [method, template, p, body, headers, status] of problems) {
    it(`${method} ${p} → ${status} Problem`, async () => {
      expect((await conform(method, template, p, body, headers)).status).toBe(status);
    });
  }

  it('per-batch 4xx answers are declared too', async () => {
    expect((await conform('GET', '/v1/batches/{id}/items', `/v1/batches/${done.id}/items?status=nope`)).status).toBe(422);
    expect((await conform('GET', '/v1/batches/{id}/items/{index}', `/v1/batches/${done.id}/items/99`)).status).toBe(404);
    expect((await conform('GET', '/v1/batches/{id}/items/{index}', `/v1/batches/${done.id}/items/-1`)).status).toBe(422);
    const wrongToken = { authorization: 'Bearer fbt_not-this-batch', 'content-type': 'text/plain' };
    expect((await conform('GET', '/v1/batches/{id}/items/{index}/input', `/v1/batches/${done.id}/items/0/input`, undefined, wrongToken)).status).toBe(403);
    expect((await conform('PUT', '/v1/batches/{id}/items/{index}/result', `/v1/batches/${done.id}/items/0/result`, 'r', wrongToken)).status).toBe(403);
    expect((await conform('PUT', '/v1/batches/{id}/items/{index}/result', `/v1/batches/${done.id}/items/0/result`, '{', { 'content-type': 'application/json' })).status).toBe(400);
    expect((await conform('PUT', '/v1/batches/{id}/items/{index}/result', `/v1/batches/${done.id}/items/0/result`, 'r', { 'content-type': 'text/plain' })).values[0]).toEqual({ recorded: false });
  });
});
