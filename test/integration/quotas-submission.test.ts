import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import type { ApiClient } from '../helpers/api-client.js';

/**
 * Submission quotas (rate: 429, storage: 403) against the real service, several tenants, the
 * server-wide defaults (FANOUT_QUOTA_*). A refused submission must change nothing.
 */

async function batchCount(client: ApiClient): Promise<number> {
  return (await client.json('GET', '/v1/batches?limit=500')).body.items.length;
}

/** Waits into a fresh minute when less than `seconds` of this one are left (windows start on the minute). */
async function awayFromMinuteEnd(seconds: number): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < seconds * 1000) await sleep(left + 50);
}

const ndjson = (task: string, items: string[]) => `${JSON.stringify({ task })}\n${items.map((i) => JSON.stringify(i)).join('\n')}\n`;

describe('submission-rate quotas', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev', 'fail=false'], env: { FANOUT_QUOTA_BATCHES_PER_MINUTE: '2', FANOUT_QUOTA_ITEMS_PER_MINUTE: '5' } });
  });
  afterAll(async () => svc?.close());

  it('answers 429 with Retry-After and the RateLimit fields over batchesPerMinute, changes nothing, and accepts again after the window', { timeout: 90_000 }, async () => {
    await awayFromMinuteEnd(20);
    const a = await svc.newTenant('rate-a');
    const b = await svc.newTenant('rate-b');
    await a.createBatch({ task: 'rev', items: ['x'] });
    await a.createBatch({ task: 'rev', items: ['y'] });
    const refused = await a.json('POST', '/v1/batches', { task: 'rev', items: ['z'] });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ type: 'https://fanout.dev/problems/rate-quota-exceeded', status: 429, quota: 'batchesPerMinute', limit: 2, used: 2, requested: 1 });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit-policy')).toBe('"batchesPerMinute";q=2;w=60, "itemsPerMinute";q=5;w=60');
    expect(refused.headers.get('ratelimit')).toBe(`"batchesPerMinute";r=0;t=${retryAfter}`);
    expect(await batchCount(a)).toBe(2);
    // per tenant: another tenant still submits
    await b.createBatch({ task: 'rev', items: ['q'] });
    const usage = (await a.json('GET', '/v1/usage')).body;
    expect(usage.quotas.batchesPerMinute).toEqual({ limit: 2, used: 2 });
    expect(usage.quotas.itemsPerMinute).toEqual({ limit: 5, used: 2 });

    await sleep(retryAfter * 1000 + 100);
    expect((await a.json('POST', '/v1/batches', { task: 'rev', items: ['z'] })).status).toBe(202);
    expect(await batchCount(a)).toBe(3);
  });

  it('counts NDJSON items when the stream ends: over itemsPerMinute the upload is discarded', { timeout: 30_000 }, async () => {
    await awayFromMinuteEnd(15);
    const c = await svc.newTenant('rate-c');
    const first = await c.request('POST', '/v1/batches', ndjson('rev', ['a', 'b', 'c', 'd']), { 'content-type': 'application/x-ndjson' });
    expect(first.status).toBe(202);
    const second = await c.request('POST', '/v1/batches', ndjson('rev', ['e', 'f']), { 'content-type': 'application/x-ndjson' });
    expect(second.status).toBe(429);
    expect(await second.json()).toMatchObject({ quota: 'itemsPerMinute', limit: 5, used: 4, requested: 2 });
    expect(second.headers.get('ratelimit')).toMatch(/^"itemsPerMinute";r=1;t=\d+$/);
    expect(await batchCount(c)).toBe(1);
    // one item still fits in the window
    expect((await c.json('POST', '/v1/batches', { task: 'rev', items: ['g'] })).status).toBe(202);
  });

  it('refuses with 403 a batch larger than a whole window: waiting cannot help', async () => {
    const d = await svc.newTenant('rate-d');
    const r = await d.json('POST', '/v1/batches', { task: 'rev', items: ['1', '2', '3', '4', '5', '6'] });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ type: 'https://fanout.dev/problems/quota-exceeded', quota: 'itemsPerMinute', limit: 5, requested: 6 });
    expect(r.headers.get('retry-after')).toBeNull();
    expect(await batchCount(d)).toBe(0);
  });

  it('counts the items a retry runs again against itemsPerMinute; refused, the batch stays as it was', { timeout: 30_000 }, async () => {
    await awayFromMinuteEnd(20);
    const e = await svc.newTenant('rate-e');
    const failed = await e.createBatch({ task: 'fail', items: ['a', 'b', 'c'], retry: { backoffLimitPerItem: 0 } });
    expect((await e.waitForPhase(failed.id)).status.phase).toBe('Failed');
    const r = await e.json('POST', `/v1/batches/${failed.id}/retry`);
    expect(r.status).toBe(429);
    expect(r.body).toMatchObject({ quota: 'itemsPerMinute', limit: 5, used: 3, requested: 3 });
    const after = await e.getBatch(failed.id);
    expect(after.status.phase).toBe('Failed');
    expect(after.status.counts).toMatchObject({ failed: 3 });
  });
});

describe('storage quotas', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), env: { FANOUT_QUOTA_STORED_ITEMS: '5', FANOUT_QUOTA_STORED_RESULT_BYTES: '12' } });
  });
  afterAll(async () => svc?.close());

  it('answers 403 naming storedItems, with its limit and use, and changes nothing', async () => {
    const a = await svc.newTenant('store-a');
    await a.createBatch({ task: 'rev', items: ['a', 'b', 'c'] });
    const r = await a.json('POST', '/v1/batches', { task: 'rev', items: ['d', 'e', 'f'] });
    expect(r.status).toBe(403);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({ type: 'https://fanout.dev/problems/quota-exceeded', title: 'Quota exceeded', quota: 'storedItems', limit: 5, used: 3, requested: 3 });
    expect(await batchCount(a)).toBe(1);
    // the same for NDJSON, after the stream
    const n = await a.request('POST', '/v1/batches', ndjson('rev', ['d', 'e', 'f']), { 'content-type': 'application/x-ndjson' });
    expect(n.status).toBe(403);
    expect(await batchCount(a)).toBe(1);
    // other tenants have their own
    const b = await svc.newTenant('store-b');
    await b.createBatch({ task: 'rev', items: ['1', '2', '3', '4'] });
    expect((await a.json('GET', '/v1/usage')).body.quotas.storedItems).toEqual({ limit: 5, used: 3 });
  });

  it('refuses new work once storedResultBytes is used up, and takes it again after a delete', { timeout: 30_000 }, async () => {
    const c = await svc.newTenant('store-c');
    const done = await c.createBatch({ task: 'rev', items: ['abcdef', 'ghijkl'] });
    expect((await c.waitForPhase(done.id)).status.phase).toBe('Succeeded');
    // two results of 8 bytes each ("fedcba" as JSON text)
    expect((await c.json('GET', '/v1/usage')).body.quotas.storedResultBytes).toEqual({ limit: 12, used: 16 });
    const r = await c.json('POST', '/v1/batches', { task: 'rev', items: ['x'] });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ quota: 'storedResultBytes', limit: 12, used: 16 });
    expect(await batchCount(c)).toBe(1);
    expect((await c.request('DELETE', `/v1/batches/${done.id}`)).status).toBe(204);
    expect((await c.json('POST', '/v1/batches', { task: 'rev', items: ['x'] })).status).toBe(202);
  });
});
