import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';
import { openTestStore } from '../helpers/test-store.js';
import { all } from '../../src/store/op.js';
import type { Store } from '../../src/store/store.js';

/**
 * `fanout up` SIGKILLed in the middle of a chunked cancel or delete (FANOUT_SWEEP_CHUNK_ITEMS 50,
 * a rest of 50 ms between chunks: 4,000 items take some 4 s) and restarted on the same store:
 * the work recorded on the batch row resumes where the last committed chunk left it, and ends
 * with every item in the state the action gives it, counted once.
 */
const ITEMS = 4000;
const ENV = { FANOUT_SWEEP_CHUNK_ITEMS: '50', FANOUT_SWEEP_PAUSE_MS: '50' };

describe('faults: a crash in the middle of chunked work', () => {
  let c: Cluster;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
    await c?.stopAll();
  });

  /** A task no worker serves: its items wait (some of them released, as `running`). */
  async function registerIdleTask(): Promise<void> {
    const redis = new Redis(c.redisUrl);
    try {
      await redis.hset(`${c.prefix}:tasks`, 'idle', JSON.stringify({ kind: 'command', lastSeen: Date.now() }));
    } finally {
      redis.disconnect();
    }
  }
  const items = Array.from({ length: ITEMS }, (_, i) => `item-${i}`);
  const query = <T>(sql: string, ...params: unknown[]) => store!.read(all<T>(sql, ...params));
  const statusCounts = async (id: string) =>
    Object.fromEntries((await query<{ status: string; n: number }>('SELECT status, count(*) AS n FROM items WHERE batch_id = ? GROUP BY status', id)).map((r) => [r.status, Number(r.n)]));

  it('cancel: killed mid-way, the restarted service cancels the rest; every item cancelled, counts add up', { timeout: 180_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    const first = await c.up([], ENV);
    await registerIdleTask();
    store = await openTestStore(c.env.DATABASE_URL);
    const b = await c.client.createBatch({ task: 'idle', items, parallelism: 20 });
    await waitUntil('items released', async () => (await c.client.getBatch(b.id)).status.counts.running > 0);
    const res = await c.client.json('POST', `/v1/batches/${b.id}/cancel`);
    expect(res.body.status.phase).toBe('Cancelled');
    await waitUntil('a few chunks done', async () => (await c.client.getBatch(b.id)).status.counts.cancelled >= 500, 30_000, 20);
    await first.kill('SIGKILL');

    // Killed with work left: the marker and open items are in the store.
    const [left] = await query<{ sweep: string | null; pending: number; running: number; cancelled: number }>('SELECT sweep, pending, running, cancelled FROM batches WHERE id = ?', b.id);
    expect(left.sweep).toBe('cancel');
    expect(Number(left.pending) + Number(left.running)).toBeGreaterThan(0);
    // What was committed is consistent: the counters match the items.
    const mid = await statusCounts(b.id);
    expect(mid.cancelled).toBe(Number(left.cancelled));

    await c.up([], ENV);
    const done = await waitUntil('the cancel to finish after the restart', async () => {
      const got = await c.client.getBatch(b.id);
      const [row] = await query<{ sweep: string | null }>('SELECT sweep FROM batches WHERE id = ?', b.id);
      return row.sweep === null ? got : null;
    }, 90_000);
    expect(done.status.phase).toBe('Cancelled');
    expect(done.status.counts).toEqual({ total: ITEMS, pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: ITEMS });
    expect(await statusCounts(b.id)).toEqual({ cancelled: ITEMS });
  });

  it('delete: killed mid-way, the batch stays invisible and the restarted service removes the rest of its rows', { timeout: 180_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    const first = await c.up([], ENV);
    await registerIdleTask();
    store = await openTestStore(c.env.DATABASE_URL);
    const b = await c.client.createBatch({ task: 'idle', items, parallelism: 20, labels: { crash: 'delete' } });
    await waitUntil('items released', async () => (await c.client.getBatch(b.id)).status.counts.running > 0);
    expect((await c.client.request('DELETE', `/v1/batches/${b.id}`)).status).toBe(204);
    const itemRows = async () => Number((await query<{ n: number }>('SELECT count(*) AS n FROM items WHERE batch_id = ?', b.id))[0].n);
    await waitUntil('a few chunks done', async () => (await itemRows()) <= ITEMS - 500, 30_000, 20);
    await first.kill('SIGKILL');
    expect(await itemRows()).toBeGreaterThan(0);
    expect((await query<{ state: string }>('SELECT state FROM batches WHERE id = ?', b.id))[0].state).toBe('deleting');

    await c.up([], ENV);
    expect((await c.client.request('GET', `/v1/batches/${b.id}`)).status).toBe(404);
    expect((await c.client.json('GET', '/v1/batches?labelSelector=crash%3Ddelete')).body.items).toEqual([]);
    await waitUntil('the batch row to go after the restart', async () => (await query('SELECT id FROM batches WHERE id = ?', b.id)).length === 0, 90_000);
    expect(await itemRows()).toBe(0);
    expect(Number((await query<{ n: number }>('SELECT count(*) AS n FROM attempts WHERE batch_id = ?', b.id))[0].n)).toBe(0);
  });
});
