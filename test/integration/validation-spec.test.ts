import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { allBatchIds, expectProblem } from './support.js';

/** Bad specs, queries, credentials and routes: a precise problem+json answer, and nothing changes. */
describe('bad input: the batch spec, queries, auth, routes', () => {
  let svc: TestService;
  let before: string[];
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
    // One real batch, so "the list is unchanged" compares against something.
    await svc.client.createBatch({ task: 'rev', items: ['x'], labels: { keep: 'yes' } });
    before = await allBatchIds(svc.client);
    expect(before).toHaveLength(1);
  });
  afterAll(async () => svc?.close());

  const post = (body: unknown, headers: Record<string, string> = {}) => svc.client.request('POST', '/v1/batches', body, headers);
  const unchanged = async () => expect(await allBatchIds(svc.client)).toEqual(before);

  const specCases: { name: string; body: Record<string, unknown>; status: number; pointer: string; detail?: RegExp }[] = [
    { name: 'wrong type: parallelism "3"', body: { task: 'rev', items: ['a'], parallelism: '3' }, status: 422, pointer: '/parallelism' },
    { name: 'unknown field: misspelled parallelsim', body: { task: 'rev', items: ['a'], parallelsim: 3 }, status: 422, pointer: '/parallelsim', detail: /parallelsim/ },
    { name: 'unknown runtime', body: { task: 'rev', items: ['a'], runtime: 'lambda' }, status: 422, pointer: '/runtime' },
    { name: 'indexed-job runtime without Kubernetes', body: { runtime: 'indexed-job', template: { image: 'busybox' }, items: ['a'] }, status: 422, pointer: '/runtime', detail: /indexed-job/ },
    { name: 'empty items', body: { task: 'rev', items: [] }, status: 422, pointer: '/items' },
    { name: 'items not a list', body: { task: 'rev', items: 'foo' }, status: 422, pointer: '/items' },
    { name: 'missing items', body: { task: 'rev' }, status: 422, pointer: '/items' },
    { name: 'missing task', body: { items: ['a'] }, status: 422, pointer: '/task' },
    { name: 'unknown task names the registered ones', body: { task: 'nope', items: ['a'] }, status: 422, pointer: '/task', detail: /nope.*echo.*rev/ },
    { name: 'invalid label value', body: { task: 'rev', items: ['a'], labels: { env: 'not ok!' } }, status: 422, pointer: '/labels/env' },
    { name: 'nested retry field of the wrong type', body: { task: 'rev', items: ['a'], retry: { backoffLimitPerItem: -1 } }, status: 422, pointer: '/retry/backoffLimitPerItem' },
    { name: 'invalid template placeholder', body: { task: 'rev', items: [{ a: 1, b: 2 }], template: { env: { X: '{{ a + b }}' } } }, status: 422, pointer: '/template/env/X', detail: /a \+ b/ },
    { name: 'unclosed template placeholder', body: { task: 'rev', items: [{ a: 1 }], template: { env: { X: 'v={{ a }' } } }, status: 422, pointer: '/template/env/X', detail: /unclosed/ },
    { name: 'template field missing from an item', body: { task: 'rev', items: [{ a: 1 }, { b: 2 }], template: { env: { X: '{{ a }}' } } }, status: 422, pointer: '/items/1', detail: /item 1 has no field "a"/ },
    // Kubernetes fields: checked by the schema, whatever the runtime.
    { name: 'a quantity in a unit Kubernetes lacks', body: { task: 'rev', items: ['a'], template: { resources: { limits: { memory: '1GB' } } } }, status: 422, pointer: '/template/resources/limits/memory', detail: /"1GB"/ },
    { name: 'a negative quantity', body: { task: 'rev', items: ['a'], template: { resources: { requests: { cpu: '-1' } } } }, status: 422, pointer: '/template/resources/requests/cpu', detail: /"-1"/ },
    { name: 'a quantity that is not a number', body: { task: 'rev', items: ['a'], template: { resources: { requests: { cpu: 'abc' } } } }, status: 422, pointer: '/template/resources/requests/cpu', detail: /"abc"/ },
    { name: 'a request above its limit', body: { task: 'rev', items: ['a'], template: { resources: { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } } } }, status: 422, pointer: '/template/resources/requests/memory', detail: /more than limits\.memory/ },
    { name: 'an unknown template field', body: { task: 'rev', items: ['a'], template: { image: 'x', imagePullPolicy: 'Always' } }, status: 422, pointer: '/template/imagePullPolicy', detail: /imagePullPolicy/ },
    { name: 'a toleration operator', body: { task: 'rev', items: ['a'], template: { tolerations: [{ key: 'k', operator: 'Gt' }] } }, status: 422, pointer: '/template/tolerations/0/operator' },
    { name: 'tolerationSeconds without NoExecute', body: { task: 'rev', items: ['a'], template: { tolerations: [{ key: 'k', operator: 'Exists', tolerationSeconds: 5 }] } }, status: 422, pointer: '/template/tolerations/0/tolerationSeconds', detail: /NoExecute/ },
    { name: 'a nodeSelector value', body: { task: 'rev', items: ['a'], template: { nodeSelector: { pool: 'a b' } } }, status: 422, pointer: '/template/nodeSelector/pool' },
    { name: 'a service account name', body: { task: 'rev', items: ['a'], template: { serviceAccountName: 'Runner' } }, status: 422, pointer: '/template/serviceAccountName', detail: /DNS subdomain/ },
    { name: 'a namespace that is not a DNS label', body: { task: 'rev', items: ['a'], namespace: 'Team_A' }, status: 422, pointer: '/namespace', detail: /DNS label/ },
    { name: 'workers parallelism 0', body: { task: 'rev', items: ['a'], workers: { kubernetes: { image: 'fanout', parallelism: 0 } } }, status: 422, pointer: '/workers/kubernetes/parallelism' },
    { name: 'a negative ttlSecondsAfterFinished', body: { task: 'rev', items: ['a'], ttlSecondsAfterFinished: -1 }, status: 422, pointer: '/ttlSecondsAfterFinished' },
    // Cross-field rules (runtimeProblems), answered before asking whether Kubernetes is configured.
    { name: 'networking on the queue runtime', body: { task: 'rev', items: ['a'], networking: { headless: true } }, status: 422, pointer: '/networking', detail: /indexed-job/ },
    { name: 'an indexed-job without an image', body: { runtime: 'indexed-job', template: { command: ['echo'] }, items: ['a'] }, status: 422, pointer: '/template/image', detail: /template\.image/ },
    { name: 'an indexed-job naming a task', body: { runtime: 'indexed-job', task: 'rev', template: { image: 'busybox' }, items: ['a'] }, status: 422, pointer: '/task', detail: /drop task/ },
    { name: 'workers on a job-per-item batch', body: { runtime: 'job-per-item', template: { image: 'busybox' }, workers: { kubernetes: { image: 'fanout', parallelism: 1 } }, items: ['a'] }, status: 422, pointer: '/workers', detail: /queue/ },
    { name: 'onHttpStatus on a Kubernetes runtime', body: { runtime: 'indexed-job', template: { image: 'busybox' }, items: ['a'], retry: { rules: [{ action: 'FailItem', onHttpStatus: { operator: 'In', values: [404] } }] } }, status: 422, pointer: '/retry/rules/0/onHttpStatus', detail: /Kubernetes cannot match/ },
    { name: 'the Timeout condition on a Kubernetes runtime', body: { runtime: 'job-per-item', template: { image: 'busybox' }, items: ['a'], retry: { rules: [{ action: 'Ignore', onConditions: [{ type: 'Timeout' }] }] } }, status: 422, pointer: '/retry/rules/0/onConditions/0/type', detail: /Kubernetes cannot match the Timeout/ },
    { name: 'exit code 0 with In on a Kubernetes runtime', body: { runtime: 'indexed-job', template: { image: 'busybox' }, items: ['a'], retry: { rules: [{ action: 'FailItem', onExitCodes: { operator: 'In', values: [0] } }] } }, status: 422, pointer: '/retry/rules/0/onExitCodes/values/0', detail: /exit code 0/ },
    { name: 'maxFailedItems above the indexed-job limit', body: { runtime: 'indexed-job', template: { image: 'busybox' }, items: ['a'], retry: { maxFailedItems: 100_001 } }, status: 422, pointer: '/retry/maxFailedItems', detail: /100000/ },
  ];

  for (const c of specCases) {
    it(`${c.name} → ${c.status} ${c.pointer}`, async () => {
      const p = await expectProblem(await post(c.body), c.status, c.pointer);
      if (c.detail) expect(p.errors!.map((e) => e.detail).join(' ') + ' ' + p.detail).toMatch(c.detail);
      await unchanged();
    });
  }

  it('malformed JSON → 400', async () => {
    const p = await expectProblem(await post('{"task": "rev", "items": [', { 'content-type': 'application/json' }), 400);
    expect(p.detail).toMatch(/JSON/);
    expect(p.type).toMatch(/malformed-json$/);
    await unchanged();
  });

  it('a JSON body that is not an object → 422', async () => {
    await expectProblem(await post('["a","b"]', { 'content-type': 'application/json' }), 422);
    await unchanged();
  });

  it('unsupported content type → 415 saying what to send', async () => {
    const p = await expectProblem(await post('task: rev\nitems: [a]\n', { 'content-type': 'text/yaml' }), 415);
    expect(p.detail).toMatch(/text\/yaml/);
    expect(p.detail).toMatch(/application\/json/);
    expect(p.type).toMatch(/unsupported-media-type$/);
    await unchanged();
  });

  it('a body without Content-Type → 415', async () => {
    const res = await fetch(`${svc.url}/v1/batches`, { method: 'POST', headers: { authorization: `Bearer ${svc.apiKey}` }, body: new TextEncoder().encode('{"task":"rev","items":["a"]}') });
    const p = await expectProblem(res, 415);
    expect(p.detail).toMatch(/application\/x-ndjson/);
    await unchanged();
  });

  it('a bad label selector on list → 400 /labelSelector', async () => {
    for (const sel of ['env in (a', 'env===x', '!', 'a b']) {
      const res = await svc.client.request('GET', `/v1/batches?labelSelector=${encodeURIComponent(sel)}`);
      await expectProblem(res, 400, '/labelSelector');
    }
  });

  it('a bad label selector on delete → 400 /labelSelector, nothing deleted', async () => {
    const res = await svc.client.request('DELETE', `/v1/batches?labelSelector=${encodeURIComponent('keep in (yes')}`);
    await expectProblem(res, 400, '/labelSelector');
    await unchanged();
  });

  it('bad query params on list → 4xx naming the parameter', async () => {
    for (const qs of ['limit=0', 'limit=abc', 'limit=100000', 'phase=Sleeping', 'cursor=not-a-cursor']) {
      const res = await svc.client.request('GET', `/v1/batches?${qs}`);
      const p = await expectProblem(res, 422);
      const name = qs.split('=')[0];
      expect(p.errors!.some((e) => e.pointer.endsWith(`/${name}`)), JSON.stringify(p)).toBe(true);
    }
  });

  it('bad query params on items → 422', async () => {
    const res = await svc.client.request('GET', `/v1/batches/${before[0]}/items?status=done`);
    const p = await expectProblem(res, 422);
    expect(p.errors!.some((e) => e.pointer.endsWith('/status'))).toBe(true);
  });

  it('missing API key → 401 with WWW-Authenticate', async () => {
    const res = await fetch(`${svc.url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ task: 'rev', items: ['a'] }) });
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    await expectProblem(res, 401);
    await unchanged();
  });

  it('invalid API key → 401 with WWW-Authenticate', async () => {
    for (const auth of ['Bearer not-a-key', 'Basic dXNlcjpwYXNz', 'Bearer']) {
      const res = await fetch(`${svc.url}/v1/batches`, { headers: { authorization: auth } });
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      await expectProblem(res, 401);
    }
  });

  it('unknown route → 404 problem', async () => {
    await expectProblem(await svc.client.request('GET', '/v1/nothing-here'), 404);
    await expectProblem(await fetch(`${svc.url}/nothing-here`), 404);
  });

  it('unknown batch → 404 problem on every batch route', async () => {
    const id = 'b000000000doesnotex';
    for (const [method, p] of [
      ['GET', `/v1/batches/${id}`],
      ['GET', `/v1/batches/${id}/items`],
      ['GET', `/v1/batches/${id}/items/0`],
      ['GET', `/v1/batches/${id}/results`],
      ['POST', `/v1/batches/${id}/cancel`],
      ['DELETE', `/v1/batches/${id}`],
    ]) {
      await expectProblem(await svc.client.request(method, p), 404);
    }
  });
});
