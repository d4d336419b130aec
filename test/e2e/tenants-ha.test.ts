import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ApiClient } from '../helpers/api-client.js';
import { newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';
import type { FanoutProcess } from '../helpers/processes.js';

/**
 * Fair share and quotas with several dispatchers: one `fanout api`, two `fanout dispatcher`
 * processes (one leads, FANOUT_LEADER_LEASE_SECONDS=2 here) and a worker, all real processes on
 * one store. The leader is SIGKILLed while tenant A has a backlog; the standby takes over from
 * the store alone, so A's running-items quota still holds and tenant B's late batch still goes
 * ahead of A's backlog.
 */

const NAP = 'nap=sleep 0.3; cat';

describe('e2e: tenants with several dispatchers', () => {
  let c: Cluster | undefined;
  afterEach(async () => {
    await c?.stopAll();
    c = undefined;
  });

  it("A's running-items quota and B's fair share hold across a leader's death", { timeout: 180_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    const adminKey = `admin-${randomBytes(16).toString('hex')}`;
    c.env.FANOUT_ADMIN_KEY = adminKey;
    const api = await c.api();
    const admin = new ApiClient(api.url, adminKey);
    const dispatchers = [await c.dispatcher(), await c.dispatcher()];
    await c.worker([NAP], { FANOUT_CONCURRENCY: '8' });

    const tenant = async (name: string, quotas: Record<string, number | null>) => {
      const t = await admin.json('POST', '/v1/admin/tenants', { name, quotas });
      expect(t.status, JSON.stringify(t.body)).toBe(201);
      const k = await admin.json('POST', `/v1/admin/tenants/${t.body.id}/api-keys`, { scopes: ['read', 'write'] });
      expect(k.status).toBe(201);
      return new ApiClient(api.url, k.body.key);
    };
    const a = await tenant('a', { runningItems: 3 });
    const b = await tenant('b', {});

    const big = await a.createBatch({ task: 'nap', items: Array.from({ length: 300 }, (_, i) => `a-${i}`), parallelism: 100 });
    let mostRunning = 0;
    const watch = async () => {
      const counts = (await a.getBatch(big.id)).status.counts;
      mostRunning = Math.max(mostRunning, counts.running);
      return counts;
    };
    await waitUntil('A running', async () => (await watch()).succeeded > 5, 60_000, 100);

    // Kill whichever dispatcher leads; the other takes over within about its lease.
    const leader = await waitUntil('a leader', () => dispatchers.find((d) => /"msg":"leading"/.test(d.output())) as FanoutProcess | undefined, 30_000, 50);
    await leader.kill('SIGKILL');
    const standby = dispatchers.find((d) => d !== leader)!;
    await waitUntil('the standby leading', () => /"msg":"leading"/.test(standby.output()), 60_000, 100);

    const small = await b.createBatch({ task: 'nap', items: ['b-0', 'b-1', 'b-2', 'b-3', 'b-4'], parallelism: 5 });
    let bDone = false;
    while (!bDone) {
      const aCounts = await watch();
      const bBatch = await b.getBatch(small.id);
      if (bBatch.status.phase === 'Succeeded') {
        bDone = true;
        // B finished while A still had work waiting behind its quota
        expect(aCounts.pending + aCounts.running, JSON.stringify(aCounts)).toBeGreaterThan(0);
      } else {
        expect(bBatch.status.phase).not.toMatch(/Failed|Cancelled/);
        await sleep(100);
      }
    }
    // A's quota held the whole time, across the change of leader
    expect(mostRunning).toBeGreaterThan(0);
    expect(mostRunning).toBeLessThanOrEqual(3);
    const aView = await a.getBatch(big.id);
    expect(JSON.stringify(aView.status.conditions ?? [])).toContain('QuotaExceeded');
    // A finishes too, each item once
    const done = await a.waitForPhase(big.id, undefined, 150_000);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.counts).toMatchObject({ total: 300, succeeded: 300, failed: 0 });
  });
});
