import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { allBatchIds } from './support.js';

/** GET /v1/batches: Kubernetes label selectors, phase filter, cursor pagination newest first. */
describe('list batches', () => {
  let svc: TestService;
  const ids: Record<string, string> = {};
  const labels: Record<string, Record<string, string>> = {
    A: { env: 'prod', tier: 'web' },
    B: { env: 'dev', tier: 'web' },
    C: { env: 'staging' },
    D: { tier: 'db' },
    E: {},
  };
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev', 'fail=exit 3'] });
    for (const [name, l] of Object.entries(labels)) {
      // D fails: the phase filter has two phases to tell apart.
      const b = await svc.client.createBatch({ name, labels: l, task: name === 'D' ? 'fail' : 'rev', items: [name], retry: { backoffLimitPerItem: 0 } });
      ids[name] = b.id;
      // Ids order by creation time in milliseconds; keep creations apart so "newest first" is defined.
      await sleep(5);
    }
    for (const id of Object.values(ids)) await svc.client.waitForPhase(id);
  });
  afterAll(async () => svc?.close());

  /** The batch names a selector returns, in list order. */
  const select = async (selector: string) => {
    const r = await svc.client.json('GET', `/v1/batches?labelSelector=${encodeURIComponent(selector)}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.items.map((b: { name: string }) => b.name).sort().join('');
  };

  const cases: [string, string][] = [
    ['env=prod', 'A'],
    ['env==prod', 'A'],
    ['env!=prod', 'BCDE'],
    ['env in (prod,dev)', 'AB'],
    ['env in (prod, staging)', 'AC'],
    ['env notin (prod,dev)', 'CDE'],
    ['env', 'ABC'],
    ['!env', 'DE'],
    ['tier', 'ABD'],
    ['!tier', 'CE'],
    ['env,tier=web', 'AB'],
    ['tier=web,env!=dev', 'A'],
    ['tier in (web),!env', ''],
    ['env=nothing', ''],
    ['', 'ABCDE'],
  ];
  for (const [selector, want] of cases) {
    it(`labelSelector ${JSON.stringify(selector)} → ${want || 'none'}`, async () => {
      expect(await select(selector)).toBe(want);
    });
  }

  it('filters by phase', async () => {
    const names = async (phase: string) => {
      const r = await svc.client.json('GET', `/v1/batches?phase=${phase}`);
      expect(r.status).toBe(200);
      for (const b of r.body.items) expect(b.status.phase).toBe(phase);
      return r.body.items.map((b: { name: string }) => b.name).sort().join('');
    };
    expect(await names('Failed')).toBe('D');
    expect(await names('Succeeded')).toBe('ABCE');
    expect(await names('Running')).toBe('');
  });

  it('combines phase and label selector', async () => {
    const r = await svc.client.json('GET', `/v1/batches?phase=Succeeded&labelSelector=${encodeURIComponent('tier')}`);
    expect(r.body.items.map((b: { name: string }) => b.name).sort()).toEqual(['A', 'B']);
  });

  it('pages with limit=2 over 5 batches: newest first, no duplicates, no gaps', async () => {
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const qs: string = `limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r = await svc.client.json('GET', `/v1/batches?${qs}`);
      expect(r.status).toBe(200);
      pages.push(r.body.items.map((b: { name: string }) => b.name));
      cursor = r.body.nextCursor;
      expect(pages.length).toBeLessThan(10);
    } while (cursor);
    expect(pages).toEqual([['E', 'D'], ['C', 'B'], ['A']]);
  });

  it('pages a filtered list the same way', async () => {
    const first = await svc.client.json('GET', `/v1/batches?limit=1&labelSelector=${encodeURIComponent('env')}`);
    expect(first.body.items.map((b: { name: string }) => b.name)).toEqual(['C']);
    expect(first.body.nextCursor).toBeTruthy();
    const second = await svc.client.json('GET', `/v1/batches?limit=5&labelSelector=env&cursor=${encodeURIComponent(first.body.nextCursor)}`);
    expect(second.body.items.map((b: { name: string }) => b.name)).toEqual(['B', 'A']);
    expect(second.body.nextCursor).toBeNull();
  });

  it('a page exactly as long as what is left has no next cursor', async () => {
    const r = await svc.client.json('GET', '/v1/batches?limit=5');
    expect(r.body.items).toHaveLength(5);
    expect(r.body.nextCursor).toBeNull();
    expect(await allBatchIds(svc.client)).toEqual(['E', 'D', 'C', 'B', 'A'].map((n) => ids[n]));
  });
});
