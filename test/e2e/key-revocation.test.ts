import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ApiClient } from '../helpers/api-client.js';
import { newCluster, type Cluster } from '../helpers/cluster.js';
import { loginCookie } from '../ui/browser.js';

/**
 * Two `fanout api` processes on one store: a key revoked through one replica is refused by the
 * other on its very next request, and the dashboard session opened with it there ends too.
 * Neither process ever logs a key.
 */
describe('e2e: revocation across API replicas', () => {
  let c: Cluster;
  afterEach(async () => c?.stopAll());

  it('a key revoked on one replica is refused by the other within its second, and its dashboard session ends', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    const adminKey = `admin-${randomBytes(16).toString('hex')}`;
    c.env.FANOUT_ADMIN_KEY = adminKey;
    const one = await c.api({ LOG_LEVEL: 'debug' });
    const two = await c.api({ LOG_LEVEL: 'debug' });
    const adminOne = new ApiClient(one.url, adminKey);
    await c.worker(['rev=rev']); // registers the task a batch names (no dispatcher: it stays pending)

    const tenant = await adminOne.json('POST', '/v1/admin/tenants', { name: 'replicated' });
    expect(tenant.status).toBe(201);
    const created = await adminOne.json('POST', `/v1/admin/tenants/${tenant.body.id}/api-keys`, { scopes: ['read', 'write'] });
    expect(created.status).toBe(201);
    const key: string = created.body.key;
    const onTwo = new ApiClient(two.url, key);
    const batch = await onTwo.createBatch({ task: 'rev', items: ['abc'] });
    expect((await onTwo.json('GET', `/v1/batches/${batch.id}`)).status).toBe(200);
    const cookie = await loginCookie(two.url, key);
    const page = (p: string) => fetch(two.url + p, { redirect: 'manual', headers: { cookie } });
    expect((await page('/ui/batches')).status).toBe(200);

    expect((await adminOne.request('DELETE', `/v1/admin/tenants/${tenant.body.id}/api-keys/${created.body.id}`)).status).toBe(204);

    // The other replica believes a valid key for at most a second (src/api/api-key-cache.ts, its
    // bound tested with a fake clock in test/integration/status-read-caches.test.ts); then refuses it.
    let refused = await onTwo.request('GET', `/v1/batches/${batch.id}`);
    for (const until = Date.now() + 5000; refused.status !== 401 && Date.now() < until; ) {
      await refused.body?.cancel();
      await new Promise((r) => setTimeout(r, 100));
      refused = await onTwo.request('GET', `/v1/batches/${batch.id}`);
    }
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ detail: expect.stringMatching(/revoked/) });
    const ended = await page('/ui/batches');
    expect(ended.status).toBe(303);
    expect(ended.headers.get('location')).toMatch(/^\/ui\/login/);
    expect((await page(`/ui/api/progress?ids=${batch.id}`)).status).toBe(401);
    // The batch itself is untouched for a key that still works.
    expect((await new ApiClient(two.url, c.apiKey).json('GET', `/v1/batches/${batch.id}`)).status).toBe(404);

    for (const p of [one, two]) {
      const out = p.output();
      expect(out.length).toBeGreaterThan(0);
      expect(out).not.toContain(key);
      expect(out).not.toContain(adminKey);
      expect(out).not.toContain(c.apiKey);
    }
  });
});
