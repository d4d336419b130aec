import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { run } from '../../src/store/op.js';
import { authenticateApiKey } from '../../src/store/tenants.js';
import { waitUntil } from '../helpers/cluster.js';
import type { ApiClient } from '../helpers/api-client.js';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * A schedule whose tenant is over a quota: its ticks are skipped and recorded as QuotaExceeded,
 * and the schedules of other tenants go on ticking.
 */
describe('schedules over a quota', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
  });
  afterAll(async () => svc?.close());

  const batchesOf = async (client: ApiClient, id: string): Promise<any[]> =>
    (await client.json('GET', `/v1/batches?limit=500&labelSelector=${encodeURIComponent(`fanout.dev/schedule=${id}`)}`)).body.items;

  it('skips the ticks of a tenant over its storedItems quota as QuotaExceeded; another tenant keeps ticking', { timeout: 30_000 }, async () => {
    const limited = await svc.newTenant('sched-limited');
    const other = await svc.newTenant('sched-other');
    // what the admin API will set: this tenant may store one item
    await svc.service.store.write(
      (function* () {
        yield* run('UPDATE tenants SET quotas = ? WHERE id = ?', JSON.stringify({ storedItems: 1 }), yield* authenticateApiKey(limited.apiKey));
      })(),
    );
    const body = { schedule: '* * * * * *', batchTemplate: { task: 'rev', items: ['abc'] } };
    const mine = (await limited.json('POST', '/v1/schedules', body)).body;
    const theirs = (await other.json('POST', '/v1/schedules', body)).body;
    const skipped = await waitUntil('a tick skipped for the quota', async () => {
      const s = (await limited.json('GET', `/v1/schedules/${mine.id}`)).body;
      return s.status.lastSkipped?.reason === 'QuotaExceeded' ? s : null;
    });
    expect(skipped.status.lastSkipped.message).toContain('storedItems');
    expect(skipped.status.recentRuns.some((r: any) => r.outcome === 'skipped' && r.reason === 'QuotaExceeded')).toBe(true);
    await waitUntil('three batches of the other tenant', async () => (await batchesOf(other, theirs.id)).length >= 3);
    expect(await batchesOf(limited, mine.id)).toHaveLength(1);
    const triggered = await limited.json('POST', `/v1/schedules/${mine.id}/trigger`);
    expect(triggered.status).toBe(403);
    expect(triggered.body).toMatchObject({ quota: 'storedItems', limit: 1, used: 1 });
    expect(await batchesOf(limited, mine.id)).toHaveLength(1);
    for (const [client, s] of [[limited, mine], [other, theirs]] as const) await client.json('PATCH', `/v1/schedules/${s.id}`, { suspend: true });
  });
});
