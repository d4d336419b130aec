import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MAX_SELECTOR_TERMS } from '../../src/domain/label-selector.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { loginCookie } from '../ui/browser.js';
import { allBatchIds, expectProblem } from './support.js';

/**
 * Selector size: a selector of hundreds of terms once reached SQLite as hundreds of nested EXISTS
 * clauses and answered 500 ("Expression tree is too large"). Every place that takes a selector
 * answers at the limit and refuses one term more with 400 /labelSelector, changing nothing.
 */
describe('label selector size limit', () => {
  let svc: TestService;
  let cookie: string;
  let kept: string;
  const repeat = (term: string, n: number) => encodeURIComponent(Array.from({ length: n }, () => term).join(','));
  const distinct = (n: number) => encodeURIComponent(Array.from({ length: n }, (_, i) => `k${i}`).join(','));

  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
    kept = (await svc.client.createBatch({ task: 'rev', items: ['a'], labels: { env: 'prod' } })).id;
    cookie = await loginCookie(svc.url, svc.apiKey);
  });
  afterAll(async () => svc?.close());

  it('lists batches with a selector of exactly the limit', async () => {
    const r = await svc.client.json('GET', `/v1/batches?labelSelector=${repeat('env=prod', MAX_SELECTOR_TERMS)}`);
    expect(r.status).toBe(200);
    expect(r.body.items.map((b: { id: string }) => b.id)).toEqual([kept]);
  });

  it('the 933-term selector the tester sent, and one term over the limit, answer 400 on every API place', async () => {
    for (const selector of [distinct(933), repeat('env=prod', MAX_SELECTOR_TERMS + 1)]) {
      for (const [method, path] of [
        ['GET', `/v1/batches?labelSelector=${selector}`],
        ['DELETE', `/v1/batches?labelSelector=${selector}`],
        ['GET', `/v1/schedules?labelSelector=${selector}`],
      ]) {
        const p = await expectProblem(await svc.client.request(method, path), 400, '/labelSelector');
        expect(p.detail, `${method} ${path.slice(0, 40)}`).toContain(`at most ${MAX_SELECTOR_TERMS} requirements`);
      }
    }
    expect(await allBatchIds(svc.client)).toEqual([kept]);
  });

  it('schedules list at the limit', async () => {
    const r = await svc.client.json('GET', `/v1/schedules?labelSelector=${distinct(MAX_SELECTOR_TERMS)}`);
    expect(r.status).toBe(200);
    expect(r.body.items).toEqual([]);
  });

  it('the dashboard lists at the limit and shows the error one over', async () => {
    const at = await fetch(`${svc.url}/ui/batches?labelSelector=${repeat('env=prod', MAX_SELECTOR_TERMS)}`, { headers: { cookie } });
    expect(at.status).toBe(200);
    expect(await at.text()).toContain(kept);
    for (const selector of [distinct(933), repeat('env=prod', MAX_SELECTOR_TERMS + 1)]) {
      const over = await fetch(`${svc.url}/ui/batches?labelSelector=${selector}`, { headers: { cookie } });
      expect(over.status).toBe(400);
      expect(await over.text()).toContain(`at most ${MAX_SELECTOR_TERMS} requirements`);
    }
  });

  it('deletes by a selector of exactly the limit', async () => {
    const doomed = (await svc.client.createBatch({ task: 'rev', items: ['a'], labels: { doomed: 'yes' } })).id;
    const r = await svc.client.json('DELETE', `/v1/batches?labelSelector=${repeat('doomed=yes', MAX_SELECTOR_TERMS)}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ deleted: 1 });
    expect(await allBatchIds(svc.client)).not.toContain(doomed);
    expect(await allBatchIds(svc.client)).toEqual([kept]);
  });
});
