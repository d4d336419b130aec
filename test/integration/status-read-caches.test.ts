import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_KEY_CACHE_MS, ApiKeyCache } from '../../src/api/api-key-cache.js';
import { run } from '../../src/store/op.js';
import { createTenantForKey, hashApiKey } from '../../src/store/tenants.js';
import { taskRegistryKey } from '../../src/runtimes/queue/protocol.js';
import { ApiClient } from '../helpers/api-client.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem } from './support.js';

/**
 * What the read and create paths remember between requests, and how soon they let go: an API
 * key found valid (a second), the task registry (a second, read again before a task is refused),
 * and a batch's index sets (none to compute while nothing finished, current once items finish).
 */
describe('caches of the request path', () => {
  let svc: TestService;
  let redis: Redis;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
    redis = new Redis(svc.redisUrl);
  });
  afterAll(async () => {
    redis?.disconnect();
    await svc?.close();
  });

  const deleteKey = (key: string) => svc.service.store.write(run('DELETE FROM api_keys WHERE key_hash = ?', hashApiKey(key)));

  it('a valid key is believed for a second after the store said so, and no longer', async () => {
    const key = `key-${randomBytes(8).toString('hex')}`;
    const tenantId = await svc.service.store.write(createTenantForKey(key, 'cached'));
    let now = 1_000_000;
    const keys = new ApiKeyCache(svc.service.store, () => now);
    expect(await keys.tenantOf(key)).toBe(tenantId);
    await deleteKey(key);
    now += API_KEY_CACHE_MS - 1;
    expect(await keys.tenantOf(key)).toBe(tenantId);
    now += 1;
    expect(await keys.tenantOf(key)).toBeNull();
    expect(API_KEY_CACHE_MS).toBeLessThanOrEqual(1000);
  });

  it('an unknown key is not remembered: a key created right after a refusal works at once', async () => {
    const key = `key-${randomBytes(8).toString('hex')}`;
    const keys = new ApiKeyCache(svc.service.store, () => 5_000_000);
    expect(await keys.tenantOf(key)).toBeNull();
    const tenantId = await svc.service.store.write(createTenantForKey(key, 'late'));
    expect(await keys.tenantOf(key)).toBe(tenantId);
  });

  it('over HTTP, a deleted key is refused with 401 once its second is over', async () => {
    const key = `key-${randomBytes(8).toString('hex')}`;
    await svc.service.store.write(createTenantForKey(key, 'deleted'));
    const client = new ApiClient(svc.url, key);
    const ok = await client.request('GET', '/v1/batches');
    expect(ok.status).toBe(200);
    await ok.text();
    await deleteKey(key);
    await sleep(API_KEY_CACHE_MS + 100);
    const refused = await expectProblem(await client.request('GET', '/v1/batches'), 401);
    expect(refused.detail).toMatch(/not valid/);
  });

  it('a task registered just after a create was refused for it is accepted at once', async () => {
    const task = `late-${randomBytes(4).toString('hex')}`;
    await expectProblem(await svc.client.request('POST', '/v1/batches', { task, items: ['a'] }), 422, '/task');
    await redis.hset(taskRegistryKey(svc.prefix), task, JSON.stringify({ kind: 'function', lastSeen: Date.now() }));
    const created = await svc.client.request('POST', '/v1/batches', { task, items: ['a'] });
    expect(created.status, await created.clone().text()).toBe(202);
    await created.text();
  });

  it('a batch view has empty index sets while nothing finished, and its sets once items finish', async () => {
    const created = await svc.client.createBatch({ task: 'rev', items: ['ab', 'cd', 'ef'], parallelism: 3 });
    expect(created.status.completedIndexes).toBe('');
    expect(created.status.failedIndexes).toBe('');
    await svc.client.waitForPhase(created.id);
    const done = await svc.client.getBatch(created.id);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.completedIndexes).toBe('0-2');
  });
});
