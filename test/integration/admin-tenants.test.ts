import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiClient } from '../helpers/api-client.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { loginCookie } from '../ui/browser.js';
import { expectProblem, waitUntil } from './support.js';

/**
 * The admin API (FANOUT_ADMIN_KEY), API keys with scopes, revocation and expiry, disabled
 * tenants, tenant isolation of the newer resources, and the audit log, against the real service.
 */

const ADMIN_KEY = `admin-${randomBytes(16).toString('hex')}`;

describe('tenants and API keys', () => {
  let svc: TestService;
  let admin: ApiClient;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), env: { FANOUT_ADMIN_KEY: ADMIN_KEY, FANOUT_KEY_LAST_USED_FLUSH_SECONDS: '1', FANOUT_WEBHOOK_ALLOW: '127.0.0.1' } });
    admin = new ApiClient(svc.url, ADMIN_KEY);
  });
  afterAll(async () => svc?.close());

  async function newTenant(name: string, body: Record<string, unknown> = {}) {
    const r = await admin.json('POST', '/v1/admin/tenants', { name, ...body });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  }
  async function newKey(tenantId: string, scopes: string[], extra: Record<string, unknown> = {}) {
    const r = await admin.json('POST', `/v1/admin/tenants/${tenantId}/api-keys`, { scopes, ...extra });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return { ...r.body, client: new ApiClient(svc.url, r.body.key) };
  }
  const tenantCount = async () => (await admin.json('GET', '/v1/admin/tenants?limit=500')).body.items.length;

  it('the admin API takes the admin key only; tenant keys and wrong keys are refused', async () => {
    await expectProblem(await svc.client.request('GET', '/v1/admin/tenants'), 401);
    await expectProblem(await new ApiClient(svc.url, `${ADMIN_KEY}x`).request('GET', '/v1/admin/tenants'), 401);
    await expectProblem(await fetch(`${svc.url}/v1/admin/tenants`), 401);
    // The admin key is no tenant key.
    await expectProblem(await admin.request('GET', '/v1/batches'), 401);
    expect((await admin.json('GET', '/v1/admin/tenants')).status).toBe(200);
  });

  it('creates, gets, lists (paged), changes and disables a tenant', async () => {
    const t = await newTenant('acme', { weight: 3, quotas: { runningItems: 10, storedItems: null } });
    expect(t).toMatchObject({ name: 'acme', weight: 3, quotas: { runningItems: 10, storedItems: null }, disabled: false });
    expect(t.id).toMatch(/^t_/);
    expect((await admin.json('GET', `/v1/admin/tenants/${t.id}`)).body).toEqual(t);

    // PATCH merges quotas: a number sets one, null makes it unlimited, absent ones stay.
    const p = await admin.json('PATCH', `/v1/admin/tenants/${t.id}`, { weight: 5, quotas: { runningItems: null, itemsPerMinute: 600 } });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ name: 'acme', weight: 5, quotas: { runningItems: null, storedItems: null, itemsPerMinute: 600 } });

    // Paging by cursor visits every tenant once.
    await newTenant('paging-1');
    await newTenant('paging-2');
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: any = await admin.json('GET', `/v1/admin/tenants?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...r.body.items.map((x: any) => x.id));
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(await tenantCount());
    expect(seen).toContain(t.id);

    const key = await newKey(t.id, ['read']);
    expect((await key.client.json('GET', '/v1/batches')).status).toBe(200);
    const d = await admin.json('DELETE', `/v1/admin/tenants/${t.id}`);
    expect(d.status).toBe(200);
    expect(d.body.disabled).toBe(true);
    const refused = await expectProblem(await key.client.request('GET', '/v1/batches'), 403);
    expect(refused.type).toMatch(/tenant-disabled/);
    const again = await admin.json('PATCH', `/v1/admin/tenants/${t.id}`, { disabled: false });
    expect(again.body.disabled).toBe(false);
    expect((await key.client.json('GET', '/v1/batches')).status).toBe(200);
  });

  it('unknown tenants are 404 on every admin call', async () => {
    const id = 't_doesnotexist';
    await expectProblem(await admin.request('GET', `/v1/admin/tenants/${id}`), 404);
    await expectProblem(await admin.request('PATCH', `/v1/admin/tenants/${id}`, { weight: 2 }), 404);
    await expectProblem(await admin.request('DELETE', `/v1/admin/tenants/${id}`), 404);
    await expectProblem(await admin.request('POST', `/v1/admin/tenants/${id}/api-keys`, { scopes: ['read'] }), 404);
    await expectProblem(await admin.request('GET', `/v1/admin/tenants/${id}/api-keys`), 404);
    await expectProblem(await admin.request('DELETE', `/v1/admin/tenants/${id}/api-keys/k_x`), 404);
  });

  it('bad input is 422 with a pointer and changes nothing', async () => {
    const before = await tenantCount();
    const cases: [unknown, string][] = [
      [{ name: 'x', weight: 0 }, '/weight'],
      [{ name: 'x', weight: 1.5 }, '/weight'],
      [{ name: 'x', weight: 1_000_000 }, '/weight'],
      [{ name: 'x', quotas: { nosuch: 1 } }, '/quotas/nosuch'],
      [{ name: 'x', quotas: { runningItems: -1 } }, '/quotas/runningItems'],
      [{ name: 'x', quotas: { runningItems: 'ten' } }, '/quotas/runningItems'],
      [{ name: '' }, '/name'],
      [{ weight: 2 }, '/name'],
      [{ name: 'x', extra: true }, '/extra'],
    ];
    for (const [body, pointer] of cases) await expectProblem(await admin.request('POST', '/v1/admin/tenants', body), 422, pointer);
    expect(await tenantCount()).toBe(before);

    const t = await newTenant('validation');
    const bad = await admin.request('PATCH', `/v1/admin/tenants/${t.id}`, { weight: 3, quotas: { runningItems: -5 } });
    await expectProblem(bad, 422, '/quotas/runningItems');
    expect((await admin.json('GET', `/v1/admin/tenants/${t.id}`)).body).toEqual(t);

    const keyCases: [unknown, string][] = [
      [{ scopes: [] }, '/scopes'],
      [{ scopes: ['root'] }, '/scopes/0'],
      [{ scopes: ['read', 'read'] }, '/scopes'],
      [{}, '/scopes'],
      [{ scopes: ['read'], expiresAt: new Date(Date.now() - 60_000).toISOString() }, '/expiresAt'],
      [{ scopes: ['read'], expiresAt: 'tomorrow' }, '/expiresAt'],
    ];
    for (const [body, pointer] of keyCases) await expectProblem(await admin.request('POST', `/v1/admin/tenants/${t.id}/api-keys`, body), 422, pointer);
    expect((await admin.json('GET', `/v1/admin/tenants/${t.id}/api-keys`)).body.items).toEqual([]);
  });

  it('a key is answered once, listed by prefix, and refused everywhere once revoked', async () => {
    const t = await newTenant('keys');
    const k = await newKey(t.id, ['read', 'write'], { name: 'ci' });
    expect(k.key).toMatch(/^fo_/);
    expect(k.key.startsWith(k.prefix)).toBe(true);
    expect(k).toMatchObject({ name: 'ci', scopes: ['read', 'write'], expiresAt: null, revoked: false, lastUsedAt: null });
    expect((await k.client.json('GET', '/v1/batches')).status).toBe(200);

    const listed = (await admin.json('GET', `/v1/admin/tenants/${t.id}/api-keys`)).body.items;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: k.id, prefix: k.prefix, name: 'ci' });
    expect(JSON.stringify(listed)).not.toContain(k.key);
    // lastUsedAt arrives with the next flush (every second here), not with the request.
    await waitUntil(async () => (await admin.json('GET', `/v1/admin/tenants/${t.id}/api-keys`)).body.items[0].lastUsedAt, 'lastUsedAt written', 10_000);

    expect((await admin.request('DELETE', `/v1/admin/tenants/${t.id}/api-keys/${k.id}`)).status).toBe(204);
    const p = await expectProblem(await k.client.request('GET', '/v1/batches'), 401);
    expect(p.detail).toMatch(/revoked/);
    await expectProblem(await k.client.request('POST', '/v1/batches', { task: 'rev', items: ['a'] }), 401);
    expect((await admin.json('GET', `/v1/admin/tenants/${t.id}/api-keys`)).body.items[0]).toMatchObject({ revoked: true });
    // Revoking again changes nothing; another tenant's key id is not found.
    expect((await admin.request('DELETE', `/v1/admin/tenants/${t.id}/api-keys/${k.id}`)).status).toBe(204);
    const other = await newTenant('keys-other');
    await expectProblem(await admin.request('DELETE', `/v1/admin/tenants/${other.id}/api-keys/${k.id}`), 404);
  });

  it('an expired key is refused', async () => {
    const t = await newTenant('expiry');
    const k = await newKey(t.id, ['read'], { expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect((await k.client.json('GET', '/v1/batches')).status).toBe(200);
    const p = await waitUntil(async () => {
      const res = await k.client.request('GET', '/v1/batches');
      return res.status === 401 ? res : null;
    }, 'the key to expire', 10_000);
    expect(await p.json()).toMatchObject({ status: 401, detail: expect.stringMatching(/expired/) });
  });

  it('scopes: read cannot change, write cannot manage keys or webhooks, admin can', async () => {
    const t = await newTenant('scopes');
    const reader = (await newKey(t.id, ['read'])).client;
    const writer = (await newKey(t.id, ['read', 'write'])).client;
    const keeper = (await newKey(t.id, ['admin'])).client;

    const refused = await expectProblem(await reader.request('POST', '/v1/batches', { task: 'rev', items: ['a'] }), 403);
    expect(refused).toMatchObject({ requiredScope: 'write' });
    expect(refused.detail).toMatch(/"write" scope/);
    expect((await reader.json('GET', '/v1/batches')).body.items).toEqual([]);

    const b = await writer.createBatch({ task: 'rev', items: ['abc'] });
    expect((await reader.json('GET', `/v1/batches/${b.id}`)).status).toBe(200);
    await expectProblem(await reader.request('POST', `/v1/batches/${b.id}/cancel`), 403);
    await expectProblem(await reader.request('DELETE', `/v1/batches/${b.id}`), 403);
    expect((await reader.json('GET', `/v1/batches/${b.id}`)).status).toBe(200);

    for (const [method, path, body] of [
      ['GET', '/v1/api-keys'],
      ['POST', '/v1/api-keys', { scopes: ['admin'] }],
      ['GET', '/v1/webhook-endpoints'],
      ['POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook' }],
      ['GET', '/v1/batch-webhook-secret'],
      ['GET', '/v1/audit-events'],
    ] as [string, string, unknown?][]) {
      const p = await expectProblem(await writer.request(method, path, body), 403);
      expect((p as { requiredScope?: string }).requiredScope, `${method} ${path}`).toBe('admin');
    }
    expect((await keeper.json('GET', '/v1/webhook-endpoints')).body.items).toEqual([]);
    // An admin-scoped key manages its own tenant's keys; it cannot read batches without read.
    await expectProblem(await keeper.request('GET', '/v1/batches'), 403);
    const made = await keeper.json('POST', '/v1/api-keys', { name: 'made-by-tenant', scopes: ['read'] });
    expect(made.status).toBe(201);
    const own = (await keeper.json('GET', '/v1/api-keys')).body.items;
    expect(own.map((k: any) => k.id)).toContain(made.body.id);
    expect(own).toHaveLength(4);
    expect((await new ApiClient(svc.url, made.body.key).json('GET', `/v1/batches/${b.id}`)).status).toBe(200);
    expect((await keeper.request('DELETE', `/v1/api-keys/${made.body.id}`)).status).toBe(204);
    await expectProblem(await new ApiClient(svc.url, made.body.key).request('GET', '/v1/batches'), 401);
  });

  it('the dashboard takes a read key for its pages, and its buttons need write', async () => {
    const t = await newTenant('dashboard');
    const writer = await newKey(t.id, ['read', 'write']);
    const viewer = await newKey(t.id, ['read']);
    const noRead = await newKey(t.id, ['write']);
    const b = await writer.client.createBatch({ task: 'rev', items: ['x'] });
    const cookie = await loginCookie(svc.url, viewer.key);
    const ui = (method: string, p: string) => fetch(svc.url + p, { method, redirect: 'manual', headers: { cookie, origin: svc.url } });
    expect((await ui('GET', `/ui/batches/${b.id}`)).status).toBe(200);
    await expectProblem(await ui('POST', `/ui/batches/${b.id}/cancel`), 403);
    // It runs to its end (or still runs): never cancelled by the refused button.
    expect((await writer.client.waitForPhase(b.id)).status.phase).toBe('Succeeded');
    const login = await fetch(`${svc.url}/ui/login`, {
      method: 'POST', redirect: 'manual', headers: { origin: svc.url, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ key: noRead.key }).toString(),
    });
    expect(login.status).toBe(403);
    expect(login.headers.get('set-cookie')).toBeNull();
  });

  it('FANOUT_API_KEY keeps full rights on its tenant', async () => {
    expect((await svc.client.json('GET', '/v1/api-keys')).status).toBe(200);
    expect((await svc.client.json('GET', '/v1/audit-events')).status).toBe(200);
    const b = await svc.client.createBatch({ task: 'rev', items: ['x'] });
    expect(b.id).toMatch(/^b/);
  });

  it("another tenant's schedules, webhook endpoints, keys and audit events are 404 or invisible", async () => {
    const a = await newTenant('iso-a');
    const bTenant = await newTenant('iso-b');
    const aKey = (await newKey(a.id, ['read', 'write', 'admin'])).client;
    const bKey = (await newKey(bTenant.id, ['read', 'write', 'admin'])).client;
    const schedule = await aKey.json('POST', '/v1/schedules', { schedule: '@hourly', suspend: true, batchTemplate: { task: 'rev', items: ['x'] } });
    expect(schedule.status).toBe(201);
    const endpoint = await aKey.json('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook' });
    expect(endpoint.status).toBe(201);
    const aKeys = (await aKey.json('GET', '/v1/api-keys')).body.items;

    await expectProblem(await bKey.request('GET', `/v1/schedules/${schedule.body.id}`), 404);
    await expectProblem(await bKey.request('PATCH', `/v1/schedules/${schedule.body.id}`, { suspend: false }), 404);
    await expectProblem(await bKey.request('DELETE', `/v1/schedules/${schedule.body.id}`), 404);
    await expectProblem(await bKey.request('GET', `/v1/webhook-endpoints/${endpoint.body.id}`), 404);
    await expectProblem(await bKey.request('DELETE', `/v1/webhook-endpoints/${endpoint.body.id}`), 404);
    await expectProblem(await bKey.request('DELETE', `/v1/api-keys/${aKeys[0].id}`), 404);
    await expectProblem(await bKey.request('GET', `/v1/audit-events?tenant=${a.id}`), 404);
    expect((await bKey.json('GET', '/v1/schedules')).body.items).toEqual([]);
    expect((await bKey.json('GET', '/v1/webhook-endpoints')).body.items).toEqual([]);
    const bEvents = (await bKey.json('GET', '/v1/audit-events?limit=500')).body.items;
    expect(bEvents.filter((e: any) => e.tenantId !== bTenant.id)).toEqual([]);
    // A's things are still there, and A's key still works.
    expect((await aKey.json('GET', `/v1/schedules/${schedule.body.id}`)).status).toBe(200);
    expect((await aKey.json('GET', `/v1/webhook-endpoints/${endpoint.body.id}`)).status).toBe(200);
    expect((await aKey.json('GET', '/v1/batches')).status).toBe(200);
  });

  it('the audit log records mutations (refused ones too) but no GET, pages newest first, and the admin sees any tenant', async () => {
    const t = await newTenant('audited');
    const k = await newKey(t.id, ['read', 'write', 'admin']);
    const reader = await newKey(t.id, ['read']);
    const b = await k.client.createBatch({ task: 'rev', items: ['body-marker-in-an-item'] });
    await k.client.json('GET', `/v1/batches/${b.id}`);
    await k.client.json('GET', '/v1/batches');
    await k.client.json('POST', `/v1/batches/${b.id}/cancel`);
    await reader.client.json('POST', '/v1/batches', { task: 'rev', items: ['nope'] });
    await k.client.json('POST', '/v1/batches', { task: 'rev', items: 'not-a-list' });

    const all: any[] = [];
    let cursor: string | null = null;
    do {
      const r: any = await k.client.json('GET', `/v1/audit-events?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      all.push(...r.body.items);
      cursor = r.body.nextCursor;
    } while (cursor);
    // newest first: the 422, the refused 403, the cancel, the submit; no GET. Then what the
    // server admin did to the tenant: its keys and the tenant itself.
    expect(all.slice(4).map((e) => [e.action, e.status, e.keyId, e.scope])).toEqual([
      ['POST /v1/admin/tenants/{id}/api-keys', 201, null, 'server-admin'],
      ['POST /v1/admin/tenants/{id}/api-keys', 201, null, 'server-admin'],
      ['POST /v1/admin/tenants', 201, null, 'server-admin'],
    ]);
    expect(all.slice(0, 4).map((e) => [e.action, e.status, e.keyId, e.scope])).toEqual([
      ['POST /v1/batches', 422, k.id, 'write'],
      ['POST /v1/batches', 403, reader.id, 'write'],
      [`POST /v1/batches/{id}/cancel`, expect.any(Number), k.id, 'write'],
      ['POST /v1/batches', 202, k.id, 'write'],
    ]);
    expect(all[2].target).toBe(`/v1/batches/${b.id}/cancel`);
    for (const e of all) {
      expect(e.tenantId).toBe(t.id);
      expect(e.sourceAddress).toMatch(/127\.0\.0\.1/);
      expect(e.requestId).toBeTruthy();
      expect(Date.parse(e.at)).not.toBeNaN();
    }

    // The server admin: one tenant with ?tenant=, its own calls recorded with the tenant they acted on.
    expect((await admin.json('GET', `/v1/audit-events?tenant=${t.id}&limit=500`)).body.items).toEqual(all);
    // Without ?tenant= the admin sees every tenant's events (the default tenant's submit too).
    await svc.client.createBatch({ task: 'rev', items: ['x'] });
    const everyTenant = (await admin.json('GET', '/v1/audit-events?limit=500')).body.items;
    expect(everyTenant[0]).toMatchObject({ action: 'POST /v1/batches', status: 202 });
    expect(everyTenant[0].tenantId).not.toBe(t.id);
    expect(everyTenant.filter((e: any) => e.tenantId === t.id)).toEqual(all);
    // Never a key or a body in the log.
    const text = JSON.stringify(await admin.json('GET', '/v1/audit-events?limit=500'));
    expect(text).not.toContain(k.key);
    expect(text).not.toContain(ADMIN_KEY);
    expect(text).not.toContain('body-marker');
  });

  it('a key does not revoke itself through /v1/api-keys (409); another admin key of the tenant, or the admin, can', async () => {
    const t = await newTenant('self-revoking');
    const one = await newKey(t.id, ['admin']);
    const two = await newKey(t.id, ['admin']);
    await expectProblem(await one.client.request('DELETE', `/v1/api-keys/${one.id}`), 409);
    expect((await one.client.json('GET', '/v1/api-keys')).status).toBe(200);
    expect((await two.client.request('DELETE', `/v1/api-keys/${one.id}`)).status).toBe(204);
    await expectProblem(await one.client.request('GET', '/v1/api-keys'), 401);
    expect((await admin.request('DELETE', `/v1/admin/tenants/${t.id}/api-keys/${two.id}`)).status).toBe(204);
  });

  it('quotas set through the admin API are enforced and shown in usage; the admin reads any tenant\'s usage', async () => {
    const t = await newTenant('quoted', { quotas: { storedItems: 3 } });
    const k = await newKey(t.id, ['read', 'write']);
    expect((await k.client.json('POST', '/v1/batches', { task: 'rev', items: ['a', 'b'] })).status).toBe(202);
    // 2 stored + 2 more > 3: refused, nothing stored
    const over = await expectProblem(await k.client.request('POST', '/v1/batches', { task: 'rev', items: ['c', 'd'] }), 403);
    expect(JSON.stringify(over)).toContain('storedItems');
    const own = (await k.client.json('GET', '/v1/usage')).body;
    expect(own).toMatchObject({ tenantId: t.id, quotas: { storedItems: { limit: 3, used: 2 } } });
    // The admin: any tenant by ?tenant=, and it must name one; a tenant key cannot name another.
    expect((await admin.json('GET', `/v1/usage?tenant=${t.id}`)).body).toEqual(own);
    await expectProblem(await admin.request('GET', '/v1/usage'), 422, '/query/tenant');
    await expectProblem(await admin.request('GET', '/v1/usage?tenant=t_nosuch'), 404);
    await expectProblem(await k.client.request('GET', `/v1/usage?tenant=${(await svc.client.json('GET', '/v1/usage')).body.tenantId}`), 404);
    // Raising the quota through PATCH lets the same submission in.
    expect((await admin.json('PATCH', `/v1/admin/tenants/${t.id}`, { quotas: { storedItems: 10 } })).status).toBe(200);
    expect((await k.client.json('POST', '/v1/batches', { task: 'rev', items: ['c', 'd'] })).status).toBe(202);
    expect((await admin.json('GET', `/v1/usage?tenant=${t.id}`)).body.quotas.storedItems).toEqual({ limit: 10, used: 4 });
  });
});

describe('admin API without FANOUT_ADMIN_KEY', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false });
  });
  afterAll(async () => svc?.close());

  it('answers 403 to every admin call, whatever key is sent', async () => {
    for (const [method, path] of [['GET', '/v1/admin/tenants'], ['POST', '/v1/admin/tenants']]) {
      const p = await expectProblem(await svc.client.request(method, path, method === 'POST' ? { name: 'x' } : undefined), 403);
      expect(p.detail).toMatch(/FANOUT_ADMIN_KEY/);
    }
  });
});
