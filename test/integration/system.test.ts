import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

/** /healthz, /readyz, /metrics, and x-request-id on every response. */
describe('system endpoints', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev', 'fail=exit 2'] });
  });
  afterAll(async () => svc?.close());

  it('/healthz → 200 without credentials', async () => {
    const res = await fetch(`${svc.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz → 200 with store and redis reachable', async () => {
    const res = await fetch(`${svc.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', store: true, redis: true });
  });

  it('/metrics: Prometheus text with batches by phase, finished items, durations and queue depth', async () => {
    const ok = await svc.client.createBatch({ task: 'rev', items: ['a', 'b', 'c'] });
    const bad = await svc.client.createBatch({ task: 'fail', items: ['x'], retry: { backoffLimitPerItem: 0 } });
    await svc.client.waitForPhase(ok.id);
    await svc.client.waitForPhase(bad.id);
    const res = await fetch(`${svc.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const sample = (name: string, labels = '') => {
      const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')}\\s+([0-9.e+-]+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    expect(text).toMatch(/^# TYPE fanout_batches gauge$/m);
    expect(sample('fanout_batches', '{phase="Succeeded"}')).toBe(1);
    expect(sample('fanout_batches', '{phase="Failed"}')).toBe(1);
    expect(text).toMatch(/^# TYPE fanout_items_finished_total counter$/m);
    expect(sample('fanout_items_finished_total', '{outcome="succeeded"}')).toBe(3);
    expect(sample('fanout_items_finished_total', '{outcome="failed"}')).toBe(1);
    expect(text).toMatch(/^# TYPE fanout_item_duration_seconds histogram$/m);
    expect(sample('fanout_item_duration_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(text).toMatch(/^# TYPE fanout_queue_depth gauge$/m);
    expect(sample('fanout_queue_depth')).toBeGreaterThanOrEqual(0);
  });

  it('every response carries x-request-id, errors included, and each request gets its own', async () => {
    const noAuth = { authorization: '' };
    const responses = await Promise.all([
      fetch(`${svc.url}/healthz`),
      fetch(`${svc.url}/readyz`),
      fetch(`${svc.url}/metrics`),
      fetch(`${svc.url}/openapi.yaml`),
      fetch(`${svc.url}/no-such-route`),
      fetch(`${svc.url}/v1/batches`, { headers: noAuth }),
      svc.client.request('GET', '/v1/batches'),
      svc.client.request('GET', '/v1/batches/b000000000missing00'),
      svc.client.request('POST', '/v1/batches', { task: 'rev', items: [] }),
      svc.client.request('POST', '/v1/batches', '{', { 'content-type': 'application/json' }),
      svc.client.request('POST', '/v1/batches', 'x', { 'content-type': 'text/csv' }),
      svc.client.request('POST', '/v1/batches', { task: 'rev', items: ['ok'] }),
      svc.client.request('GET', '/v1/batches?labelSelector=%21'),
    ]);
    const ids = responses.map((r) => r.headers.get('x-request-id'));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 404, 401, 200, 404, 422, 400, 415, 202, 400]);
    for (const id of ids) expect(id).toMatch(/\S{8,}/);
    expect(new Set(ids).size).toBe(ids.length);
    await Promise.all(responses.map((r) => r.arrayBuffer()));
  });

  it('a client-sent X-Request-Id is echoed back', async () => {
    const res = await svc.client.request('GET', '/v1/batches', undefined, { 'x-request-id': 'trace-abc-123' });
    expect(res.headers.get('x-request-id')).toBe('trace-abc-123');
    await res.text();
  });
});
