import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { allBatchIds, expectProblem, queryDb, registerTaskWithoutWorker, waitUntil } from './support.js';

/**
 * Cancel, retry and delete of batches larger than one chunk of items (FANOUT_SWEEP_CHUNK_ITEMS,
 * 100 here): the request answers at once, the rest is done chunk by chunk with the event loop
 * free (a rest of FANOUT_SWEEP_PAUSE_MS between chunks makes the work last long enough to be
 * seen under way), and the final state and counts are those of the same action done at once.
 */
const CHUNK = 100;

describe('chunked cancel, retry and delete', () => {
  let svc: TestService;
  let flakyOk: string;
  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-flaky-'));
    flakyOk = path.join(dir, 'ok');
    // Fails until the file `ok` exists, then echoes its item.
    const script = path.join(dir, 'flaky.sh');
    fs.writeFileSync(script, `#!/bin/sh\ntest -e ${flakyOk} || exit 3\ncat\n`, { mode: 0o755 });
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      tasks: [`flaky=${script}`],
      env: { FANOUT_SWEEP_CHUNK_ITEMS: String(CHUNK), FANOUT_SWEEP_PAUSE_MS: '20' },
    });
    await registerTaskWithoutWorker(svc, 'idle');
  });
  afterAll(async () => svc?.close());

  const statusCounts = async (id: string) => {
    const rows = await queryDb<{ status: string; n: number }>(svc, 'SELECT status, count(*) AS n FROM items WHERE batch_id = ? GROUP BY status ORDER BY status', id);
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  };
  const sweepOf = async (id: string) => (await queryDb<{ sweep: string | null }>(svc, 'SELECT sweep FROM batches WHERE id = ?', id))[0]?.sweep ?? null;
  const itemRows = async (id: string) => Number((await queryDb<{ n: number }>(svc, 'SELECT count(*) AS n FROM items WHERE batch_id = ?', id))[0].n);
  const healthz = async () => {
    const res = await fetch(`${svc.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  };
  const items = (n: number) => Array.from({ length: n }, (_, i) => `item-${i}`);

  it('cancel of a batch of 30 chunks: Cancelled at once, /healthz answers while the rest is cancelled, every item cancelled once', async () => {
    const b = await svc.client.createBatch({ task: 'idle', items: items(3000), parallelism: 10 });
    await waitUntil(async () => (await svc.client.getBatch(b.id)).status.counts.running > 0, 'items released');
    const res = await svc.client.json('POST', `/v1/batches/${b.id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body.status.phase).toBe('Cancelled');
    // The answer is truthful: the first chunk is cancelled, the rest still open.
    const c0 = res.body.status.counts;
    expect(c0.cancelled).toBeGreaterThanOrEqual(CHUNK);
    expect(c0.pending + c0.running).toBeGreaterThan(0);
    expect(await sweepOf(b.id)).toBe('cancel');
    await healthz();
    expect(await sweepOf(b.id)).toBe('cancel');

    await waitUntil(async () => (await sweepOf(b.id)) === null, 'the cancel to finish', 60_000);
    const done = await svc.client.getBatch(b.id);
    expect(done.status.phase).toBe('Cancelled');
    expect(done.status.counts).toEqual({ total: 3000, pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 3000 });
    expect(await statusCounts(b.id)).toEqual({ cancelled: 3000 });
    expect(done.status.failedIndexes).toBe('');
    // Nothing of it is out any more.
    expect(await queryDb(svc, 'SELECT id FROM leases WHERE batch_id = ?', b.id)).toEqual([]);
  });

  it('a FailBatch halt cancels the rest in chunks; retry then puts every item back in chunks and the batch succeeds', { timeout: 180_000 }, async () => {
    const n = 250;
    const b = await svc.client.createBatch({ task: 'flaky', items: items(n), parallelism: 8, retry: { backoffLimitPerItem: 0, maxFailedItems: 0 } });
    const failed = await svc.client.waitForPhase(b.id, ['Failed'], 60_000);
    expect(failed.status.conditions.find((c: any) => c.type === 'Failed')?.reason).toBe('MaxFailedItemsExceeded');
    await waitUntil(async () => (await sweepOf(b.id)) === null, 'the halt to cancel the rest', 60_000);
    const halted = await svc.client.getBatch(b.id);
    expect(halted.status.counts.pending + halted.status.counts.running).toBe(0);
    expect(halted.status.counts.failed).toBeGreaterThanOrEqual(1);
    expect(halted.status.counts.failed + halted.status.counts.cancelled + halted.status.counts.succeeded).toBe(n);

    fs.writeFileSync(flakyOk, '');
    const res = await svc.client.json('POST', `/v1/batches/${b.id}/retry`);
    expect(res.status).toBe(200);
    expect(['Pending', 'Running']).toContain(res.body.status.phase);
    await healthz();
    const done = await svc.client.waitForPhase(b.id, ['Succeeded', 'Failed'], 90_000);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.counts).toEqual({ total: n, pending: 0, running: 0, succeeded: n, failed: 0, cancelled: 0 });
    expect(done.status.completedIndexes).toBe(`0-${n - 1}`);
    expect(await statusCounts(b.id)).toEqual({ succeeded: n });
    expect(await sweepOf(b.id)).toBeNull();
    const results = await svc.client.results(b.id);
    expect(results.map((r: any) => r.result)).toEqual(items(n));
  });

  it('delete of a batch of 30 chunks: 404 at once, /healthz answers while its rows go, then no row of it is left', async () => {
    const b = await svc.client.createBatch({ task: 'idle', items: items(3000), parallelism: 10, labels: { chunked: 'one' } });
    await waitUntil(async () => (await svc.client.getBatch(b.id)).status.counts.running > 0, 'items released');
    expect((await svc.client.request('DELETE', `/v1/batches/${b.id}`)).status).toBe(204);
    await expectProblem(await svc.client.request('GET', `/v1/batches/${b.id}`), 404);
    await expectProblem(await svc.client.request('GET', `/v1/batches/${b.id}/items`), 404);
    await expectProblem(await svc.client.request('POST', `/v1/batches/${b.id}/cancel`), 404);
    await expectProblem(await svc.client.request('DELETE', `/v1/batches/${b.id}`), 404);
    expect(await allBatchIds(svc.client)).not.toContain(b.id);
    expect((await svc.client.json('DELETE', `/v1/batches?labelSelector=chunked%3Done`)).body).toEqual({ deleted: 0 });
    expect(await itemRows(b.id)).toBeGreaterThan(0);
    await healthz();
    await waitUntil(async () => (await queryDb(svc, 'SELECT id FROM batches WHERE id = ?', b.id)).length === 0, 'the batch row to go', 60_000);
    expect(await itemRows(b.id)).toBe(0);
    expect(Number((await queryDb<{ n: number }>(svc, 'SELECT count(*) AS n FROM attempts WHERE batch_id = ?', b.id))[0].n)).toBe(0);
    expect(await queryDb(svc, 'SELECT batch_id FROM batch_labels WHERE batch_id = ?', b.id)).toEqual([]);
  });

  it('delete by selector of 30 batches: all gone at once for clients, every row removed, other batches untouched', async () => {
    const gone: string[] = [];
    for (let k = 0; k < 30; k++) gone.push((await svc.client.createBatch({ task: 'idle', items: items(40), parallelism: 2, labels: { sel: 'many' } })).id);
    const kept = await svc.client.createBatch({ task: 'idle', items: items(40), parallelism: 2, labels: { sel: 'other' } });
    const res = await svc.client.json('DELETE', `/v1/batches?labelSelector=sel%3Dmany`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted: 30 });
    const listed = await allBatchIds(svc.client);
    for (const id of gone) {
      expect(listed).not.toContain(id);
      await expectProblem(await svc.client.request('GET', `/v1/batches/${id}`), 404);
    }
    await healthz();
    await waitUntil(async () => (await queryDb(svc, `SELECT id FROM batches WHERE id IN (${gone.map(() => '?').join(', ')})`, ...gone)).length === 0, 'every batch row to go', 60_000);
    expect(Number((await queryDb<{ n: number }>(svc, `SELECT count(*) AS n FROM items WHERE batch_id IN (${gone.map(() => '?').join(', ')})`, ...gone))[0].n)).toBe(0);
    const still = await svc.client.getBatch(kept.id);
    expect(still.status.counts.total).toBe(40);
    expect(await itemRows(kept.id)).toBe(40);
  });
});
