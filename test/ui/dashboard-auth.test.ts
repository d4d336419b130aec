import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signSession } from '../../src/api/ui/session.js';
import { serverSecret } from '../../src/store/tenants.js';
import type { ApiClient } from '../helpers/api-client.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem, waitUntil } from '../integration/support.js';
import { loginCookie } from './browser.js';

/** The dashboard's auth, CSRF and tenant isolation over plain HTTP (the browser test covers the pages). */
describe('dashboard auth', () => {
  let svc: TestService;
  let cookie: string;
  let other: ApiClient;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['sleepy=sleep 20; cat', 'echo=cat'] });
    cookie = await loginCookie(svc.url, svc.apiKey);
    other = await svc.newTenant('other');
  });
  afterAll(async () => {
    await svc?.close();
  });

  const get = (p: string, headers: Record<string, string> = {}) => fetch(svc.url + p, { redirect: 'manual', headers });
  const post = (p: string, headers: Record<string, string>, body = '') =>
    fetch(svc.url + p, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });

  it('login sets an HttpOnly, SameSite=Strict, Path=/ui session cookie that does not hold the key', async () => {
    const res = await post('/ui/login', { origin: svc.url }, new URLSearchParams({ key: svc.apiKey, next: '/ui/schedules' }).toString());
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/ui/schedules');
    const set = res.headers.get('set-cookie')!;
    expect(set).toMatch(/^fanout_session=v1\./);
    expect(set).toMatch(/HttpOnly/i);
    expect(set).toMatch(/SameSite=Strict/i);
    expect(set).toMatch(/Path=\/ui(;|$)/);
    expect(set).not.toContain(svc.apiKey);
    expect(decodeURIComponent(set)).not.toContain(svc.apiKey);
    // The payload is readable base64url JSON: tenant, key id and expiry only.
    const payload = JSON.parse(Buffer.from(set.split(';')[0].split('.')[1], 'base64url').toString());
    expect(Object.keys(payload).sort()).toEqual(['exp', 'k', 't']);
  });

  it('a wrong or empty key gets the login page again with 401 and no cookie', async () => {
    for (const key of ['fo_wrong', '']) {
      const res = await post('/ui/login', { origin: svc.url }, new URLSearchParams({ key }).toString());
      expect(res.status).toBe(401);
      expect(res.headers.get('set-cookie')).toBeNull();
      expect(await res.text()).toMatch(key ? /That API key is not valid/ : /Paste an API key/);
    }
  });

  it('an external next after login is ignored', async () => {
    const res = await post('/ui/login', { origin: svc.url }, new URLSearchParams({ key: svc.apiKey, next: 'https://evil.example/' }).toString());
    expect(res.headers.get('location')).toBe('/ui/batches');
  });

  it('without a session: pages redirect to the login page, JSON and SSE endpoints answer 401 problem+json', async () => {
    for (const p of ['/ui', '/ui/batches', '/ui/batches/b123', '/ui/schedules', '/ui/webhooks']) {
      const res = await get(p);
      expect(res.status, p).toBe(303);
      expect(res.headers.get('location'), p).toBe(`/ui/login?next=${encodeURIComponent(p)}`);
    }
    for (const p of ['/ui/api/progress?ids=b1', '/ui/batches/b123/events', '/ui/batches/b123/results']) {
      await expectProblem(await get(p), 401);
    }
    // The login page and the assets need none.
    expect((await get('/ui/login')).status).toBe(200);
    expect((await get('/ui/assets/dashboard.js')).status).toBe(200);
  });

  it('forged, tampered and expired cookies are refused', async () => {
    const secret = await svc.service.store.write(serverSecret());
    const payload = JSON.parse(Buffer.from(cookie.split('.')[1], 'base64url').toString());
    const tenantId = payload.t as string;
    const keyId = payload.k as string;
    const [v, , sig] = cookie.slice('fanout_session='.length).split('.');
    const otherPayload = Buffer.from(JSON.stringify({ t: 't_someoneelse', exp: Date.now() + 3600_000 })).toString('base64url');
    const bad = [
      'fanout_session=v1.e30.AAAA',
      `fanout_session=${v}.${otherPayload}.${sig}`,
      `fanout_session=${signSession('0'.repeat(64), { tenantId, keyId, expiresAt: Date.now() + 3600_000 })}`,
      `fanout_session=${signSession(secret, { tenantId, keyId, expiresAt: Date.now() - 1000 })}`,
      // signed right, but naming a key that does not exist, or the key under another tenant
      `fanout_session=${signSession(secret, { tenantId, keyId: 'k_0000000000000000', expiresAt: Date.now() + 3600_000 })}`,
      `fanout_session=${signSession(secret, { tenantId: 't_someoneelse', keyId, expiresAt: Date.now() + 3600_000 })}`,
    ];
    for (const c of bad) {
      expect((await get('/ui/batches', { cookie: c })).status, c).toBe(303);
      await expectProblem(await get('/ui/api/progress?ids=b1', { cookie: c }), 401);
    }
    // The real one works, and a freshly signed one with the server secret too (the format is what the test thinks).
    expect((await get('/ui/batches', { cookie })).status).toBe(200);
    expect((await get('/ui/batches', { cookie: `fanout_session=${signSession(secret, { tenantId, keyId, expiresAt: Date.now() + 60_000 })}` })).status).toBe(200);
  });

  it('the cookie is no credential for /v1: the API stays bearer-only', async () => {
    await expectProblem(await get('/v1/batches', { cookie }), 401);
  });

  it('logout clears the cookie', async () => {
    const res = await post('/ui/logout', { origin: svc.url, cookie });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/ui/login');
    expect(res.headers.get('set-cookie')).toMatch(/fanout_session=;.*Max-Age=0/i);
  });

  it('cross-origin POSTs are refused with 403 and change nothing', async () => {
    const b = await svc.client.createBatch({ task: 'sleepy', items: ['a', 'b'], parallelism: 1 });
    await waitUntil(async () => (await svc.client.getBatch(b.id)).status.counts.running > 0, 'an item to run');
    const attempts: Record<string, string>[] = [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: `http://localhost:${new URL(svc.url).port}` }, // same port, another host name: another origin
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      {}, // neither header
    ];
    for (const h of attempts) {
      const p = await expectProblem(await post(`/ui/batches/${b.id}/cancel`, { cookie, ...h }), 403);
      expect(p.detail).toMatch(/cross-origin/);
    }
    // Login and logout are state changes too (login CSRF).
    await expectProblem(await post('/ui/login', { origin: 'http://evil.example' }, new URLSearchParams({ key: svc.apiKey }).toString()), 403);
    await expectProblem(await post('/ui/logout', { cookie, origin: 'http://evil.example' }), 403);
    const after = await svc.client.getBatch(b.id);
    expect(after.status.phase).toBe('Running');
    // The same request from the dashboard's origin is accepted (Sec-Fetch-Site alone as well).
    const ok = await post(`/ui/batches/${b.id}/cancel`, { cookie, 'sec-fetch-site': 'same-origin' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe(`/ui/batches/${b.id}?done=cancelled`);
    expect((await svc.client.waitForPhase(b.id, ['Cancelled'], 15_000)).status.phase).toBe('Cancelled');
    // Cancelling again: the state machine refuses; the page says why, with 409.
    const again = await post(`/ui/batches/${b.id}/cancel`, { cookie, origin: svc.url });
    expect(again.status).toBe(409);
    expect(await again.text()).toMatch(/cannot cancel a batch that is Cancelled/);
  }, 60_000);

  it("another tenant's batch is not found anywhere in the dashboard, and actions on it change nothing", async () => {
    const theirs = await other.createBatch({ task: 'sleepy', items: ['x'], parallelism: 1, labels: { owner: 'other' } });
    const page = await get(`/ui/batches/${theirs.id}`, { cookie });
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/batch not found/);
    await expectProblem(await get(`/ui/batches/${theirs.id}/events`, { cookie }), 404);
    await expectProblem(await get(`/ui/batches/${theirs.id}/results`, { cookie }), 404);
    await expectProblem(await post(`/ui/batches/${theirs.id}/cancel`, { cookie, origin: svc.url }), 404);
    const progress = await (await get(`/ui/api/progress?ids=${theirs.id}`, { cookie })).json();
    expect(progress).toEqual({ items: [] });
    const list = await (await get('/ui/batches?labelSelector=owner%3Dother', { cookie })).text();
    expect(list).not.toContain(theirs.id);
    expect((await other.getBatch(theirs.id)).status.phase).not.toBe('Cancelled');
    await other.json('POST', `/v1/batches/${theirs.id}/cancel`);
  });

  it('bad input on JSON endpoints is a precise problem; on pages an error the page shows', async () => {
    const bad = await expectProblem(await get('/ui/api/progress?ids=b1,../../x', { cookie }), 422, '/query/ids');
    expect(bad.detail).toMatch(/not a batch id/);
    const tooMany = Array.from({ length: 101 }, (_, i) => `b${i}`).join(',');
    await expectProblem(await get(`/ui/api/progress?ids=${tooMany}`, { cookie }), 422, '/query/ids');
    const page = await get('/ui/batches?labelSelector=' + encodeURIComponent('a in (b'), { cookie });
    expect(page.status).toBe(400);
    expect(await page.text()).toMatch(/Invalid label selector/);
  });

  it('a dashboard form is read within 16 KiB: a bigger one → 413, sent whole or streamed', async () => {
    const form = (bytes: number) => `key=${'k'.repeat(bytes - 'key='.length)}`;
    // Exactly at the limit: read, and refused only because the key is wrong.
    expect((await post('/ui/login', { origin: svc.url }, form(16 * 1024))).status).toBe(401);
    const p = await expectProblem(await post('/ui/login', { origin: svc.url }, form(16 * 1024 + 1)), 413);
    expect(p.detail).toContain(String(16 * 1024));
    const streamed = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let k = 0; k < 8; k++) controller.enqueue(new TextEncoder().encode(form(4096)));
        controller.close();
      },
    });
    const res = await fetch(svc.url + '/ui/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: svc.url }, body: streamed, duplex: 'half' } as RequestInit);
    await expectProblem(res, 413);
  });

  it('pages carry a strict CSP and no caching', async () => {
    const res = await get('/ui/batches', { cookie });
    expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(res.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('pages through batches and items with Next page links', async () => {
    const label = `page${Date.now().toString(36)}`;
    const ids: string[] = [];
    for (let i = 0; i < 27; i++) ids.push((await svc.client.createBatch({ labels: { pg: label }, task: 'echo', items: ['x'] })).id);
    const rowsOf = (text: string) => [...text.matchAll(/<tr data-row="([^"]+)"/g)].map((m) => m[1]);
    const nextOf = (text: string) => /<a class="button" href="([^"]+)" rel="next">/.exec(text)?.[1]?.replace(/&amp;/g, '&');
    const first = await (await get(`/ui/batches?labelSelector=pg%3D${label}`, { cookie })).text();
    expect(rowsOf(first)).toEqual(ids.slice(2).reverse());
    const next = nextOf(first)!;
    expect(next).toMatch(/labelSelector=pg%3D.*&after=b/);
    const second = await (await get(next, { cookie })).text();
    expect(rowsOf(second)).toEqual(ids.slice(0, 2).reverse());
    expect(nextOf(second)).toBeUndefined();
    expect(second).toContain('First page');

    const b = await svc.client.createBatch({ task: 'echo', items: Array.from({ length: 60 }, (_, i) => i) });
    await svc.client.waitForPhase(b.id);
    const indexesOf = (text: string) => [...text.matchAll(/<tr data-index="(\d+)"/g)].map((m) => Number(m[1]));
    const items1 = await (await get(`/ui/batches/${b.id}?status=succeeded`, { cookie })).text();
    expect(indexesOf(items1)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const items2 = await (await get(nextOf(items1)!, { cookie })).text();
    expect(nextOf(items1)).toBe(`/ui/batches/${b.id}?status=succeeded&after=49`);
    expect(indexesOf(items2)).toEqual(Array.from({ length: 10 }, (_, i) => 50 + i));
  }, 60_000);
});
