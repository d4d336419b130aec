import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { maxOverlap } from '../helpers/cluster.js';
import type { ApiClient } from '../helpers/api-client.js';
import { run } from '../../src/store/op.js';
import { authenticateApiKey } from '../../src/store/tenants.js';
import { loginCookie } from '../ui/browser.js';

/**
 * The runningItems quota: a tenant's items running at once across its batches never exceed it
 * (measured by the task itself: start and end times it writes to files), a batch held back shows
 * QuotaExceeded and then completes, another tenant is not held back, and the quota still holds
 * after the dispatcher restarts. Then usage matches what ran, and /metrics has the tenants.
 */

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-quota-'));
// start/end timestamps in ns into <scratch>/<batch>.<index>.<attempt>
const STAMP = `f="${scratch}/$FANOUT_BATCH_ID.$FANOUT_ITEM_INDEX.$FANOUT_ATTEMPT"; echo "start $(date +%s%N)" >> "$f"; sleep 0.3; echo "end $(date +%s%N)" >> "$f"; cat`;

function spansOf(batchIds: string[]): Array<[number, number]> {
  return fs
    .readdirSync(scratch)
    .filter((f) => batchIds.some((id) => f.startsWith(`${id}.`)))
    .map((f) => {
      const lines = fs.readFileSync(path.join(scratch, f), 'utf8').trim().split('\n');
      const at = (what: string) => Number(lines.find((l) => l.startsWith(what))?.split(' ')[1]) / 1e6;
      return [at('start'), at('end') || Date.now()] as [number, number];
    });
}

/** What the tenants branch's admin API will write (PATCH /v1/admin/tenants/{id} {quotas}). */
async function setTenantQuotas(svc: TestService, client: ApiClient, quotas: Record<string, number | null>): Promise<void> {
  await svc.service.store.write(
    (function* () {
      const tenantId = yield* authenticateApiKey(client.apiKey);
      yield* run('UPDATE tenants SET quotas = ? WHERE id = ?', JSON.stringify(quotas), tenantId);
    })(),
  );
}

const items = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('runningItems quota', () => {
  let svc: TestService;
  let limited: ApiClient;
  let other: ApiClient;
  const limitedBatches: string[] = [];
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: [`stamp=${STAMP}`], env: { FANOUT_CONCURRENCY: '10' } });
    limited = await svc.newTenant('limited');
    other = await svc.newTenant('other');
    await setTenantQuotas(svc, limited, { runningItems: 2 });
  });
  afterAll(async () => svc?.close());

  it("never runs more of a tenant's items at once than its quota; the batch held back shows QuotaExceeded, then completes; another tenant is not held back", { timeout: 90_000 }, async () => {
    const first = await limited.createBatch({ task: 'stamp', items: items('a', 6), parallelism: 10 });
    const second = await limited.createBatch({ task: 'stamp', items: items('b', 4), parallelism: 10 });
    const free = await other.createBatch({ task: 'stamp', items: items('o', 6), parallelism: 6 });
    limitedBatches.push(first.id, second.id);
    // held back while the first batch has the quota
    let sawCondition: any;
    const until = Date.now() + 20_000;
    while (!sawCondition && Date.now() < until) {
      const b = await limited.getBatch(second.id);
      sawCondition = b.status.conditions.find((c: any) => c.type === 'QuotaExceeded' && c.status === 'True');
      if (b.status.phase === 'Succeeded') break;
      await sleep(50);
    }
    expect(sawCondition).toMatchObject({ reason: 'QuotaExceeded', message: expect.stringContaining('runningItems') });
    for (const id of [first.id, second.id]) expect((await limited.waitForPhase(id, undefined, 60_000)).status.phase).toBe('Succeeded');
    const done = await limited.getBatch(second.id);
    expect(done.status.conditions.find((c: any) => c.type === 'QuotaExceeded')).toMatchObject({ status: 'False' });
    expect((await other.waitForPhase(free.id, undefined, 60_000)).status.phase).toBe('Succeeded');
    expect(maxOverlap(spansOf([first.id, second.id]))).toBe(2);
    // the other tenant ran more at once than the limited tenant's quota
    expect(maxOverlap(spansOf([free.id]))).toBeGreaterThan(2);
  });

  it('holds after the dispatcher restarts (the count comes from the store)', { timeout: 90_000 }, async () => {
    const batch = await limited.createBatch({ task: 'stamp', items: items('r', 8), parallelism: 10 });
    limitedBatches.push(batch.id);
    await sleep(500);
    const { dataDir, prefix, apiKey, databaseUrl, redisUrl } = svc;
    await svc.close();
    svc = await startTestService({ redisUrl, dataDir, prefix, apiKey, tasks: [`stamp=${STAMP}`], env: { DATABASE_URL: databaseUrl, FANOUT_CONCURRENCY: '10' } });
    const again = new (limited.constructor as new (url: string, key: string) => ApiClient)(svc.url, limited.apiKey);
    const more = await again.createBatch({ task: 'stamp', items: items('s', 4), parallelism: 10 });
    limitedBatches.push(more.id);
    for (const id of [batch.id, more.id]) expect((await again.waitForPhase(id, undefined, 60_000)).status.phase).toBe('Succeeded');
    expect(maxOverlap(spansOf([batch.id, more.id]))).toBeLessThanOrEqual(2);
    limited = again;
  });

  it("usage matches what ran: batches, items run, result bytes, execution time", async () => {
    const today = new Date().toISOString().slice(0, 10);
    const r = await limited.json('GET', `/v1/usage?from=${today}&to=${today}&groupBy=day`);
    expect(r.status).toBe(200);
    const attempts = spansOf(limitedBatches).length;
    const results = (await Promise.all(limitedBatches.map((id) => limited.results(id)))).flat();
    const bytes = results.reduce((n, it) => n + Buffer.byteLength(JSON.stringify(it.result)), 0);
    expect(r.body.days).toHaveLength(1);
    expect(r.body.days[0]).toMatchObject({ day: today, batches: 4, itemsSubmitted: 22, itemsRun: attempts, resultBytes: bytes });
    // each attempt sleeps 0.3 s
    expect(r.body.days[0].itemSeconds).toBeGreaterThanOrEqual(attempts * 0.3);
    expect(r.body.quotas.runningItems).toEqual({ limit: 2, used: 0 });
    expect(r.body.quotas.storedItems).toEqual({ limit: null, used: 22 });
  });

  it('has per-tenant counters in /metrics, with other for tenants beyond the busiest', async () => {
    const usage = (await limited.json('GET', '/v1/usage?from=' + new Date().toISOString().slice(0, 10))).body;
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    expect(text).toContain(`fanout_tenant_items_run_today{tenant="${usage.tenantId}"} ${usage.days[0].itemsRun}`);
    expect(text).toContain(`fanout_tenant_batches_today{tenant="${usage.tenantId}"} 4`);
    expect(text).toContain(`fanout_tenant_running_items{tenant="${usage.tenantId}"} 0`);
    expect(text).toMatch(/^fanout_tenant_items_run_today\{tenant="other"\} 0$/m);
  });

  it("shows the tenant's quotas and usage on the dashboard", async () => {
    const cookie = await loginCookie(svc.url, limited.apiKey);
    const res = await fetch(`${svc.url}/ui/usage`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/<tr data-quota="runningItems"><td>Items running now<div class="mono muted">runningItems<\/div><\/td><td class="num">0<\/td><td class="num">2<\/td>/);
    expect(text).toMatch(/<tr data-quota="storedItems">.*<td class="num">22<\/td><td class="num"><span class="muted">unlimited<\/span>/);
    const today = new Date().toISOString().slice(0, 10);
    expect(text).toContain(`<tr><td>${today}</td><td class="num">4</td><td class="num">22</td>`);
  });

  it.each([
    ['from=yesterday', '/query/from'],
    ['from=2026-12-03&to=2026-12-01', '/query/to'],
    ['from=2026-12-01&groupBy=week', '/query/groupBy'],
    ['to=2026-12-01', '/query/from'],
    ['from=2020-01-01&to=2026-01-01', '/query/to'],
  ])('refuses %s with 422 and a pointer', async (query, pointer) => {
    const r = await limited.json('GET', `/v1/usage?${query}`);
    expect(r.status).toBe(422);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.body.errors[0].pointer).toBe(pointer);
  });
});
