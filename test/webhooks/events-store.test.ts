import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { createBatch } from '../../src/store/batch-create.js';
import type { Store } from '../../src/store/store.js';
import { applyKubernetesObservation } from '../../src/store/kubernetes-sync.js';
import { applyReports } from '../../src/store/reports.js';
import { all, run, value } from '../../src/store/op.js';
import { newDatabaseUrl, openTestStore } from '../helpers/test-store.js';
import { createTenantForKey } from '../../src/store/tenants.js';
import { createEndpoint, updateEndpoint } from '../../src/store/webhook-endpoints.js';

/**
 * Events are written by the store transactions that make them true: the final transition and
 * items failing, from worker reports and from the Kubernetes sync. The run's real store.
 */

describe('webhook events in the store', () => {
  let store: Store;
  let tenant: string;
  beforeEach(async () => {
    store = await openTestStore(await newDatabaseUrl(fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-wh-'))));
    tenant = await store.write(createTenantForKey(`k-${Math.random()}`, 't'));
  });
  afterEach(() => store.close());

  // Written in one operation each, so creation time and id order are event order.
  const events = () => store.read(all<{ type: string; payload: string }>('SELECT type, payload FROM webhook_events ORDER BY created_at, id'));
  const deliveries = () => store.read(all<any>('SELECT endpoint_id AS "endpointId", url, status FROM webhook_deliveries ORDER BY id'));
  const running = async (id: string, n: number) => {
    await store.write(run("UPDATE items SET status = 'running', attempt = 1 WHERE batch_id = ?", id));
    await store.write(run('UPDATE batches SET pending = 0, running = ? WHERE id = ?', n, id));
  };
  const items = (n: number) => Array.from({ length: n }, (_, i) => ({ input: JSON.stringify(`i${i}`), customId: `c${i}` }));

  it('Kubernetes sync: item.failed per newly failed index, batch.failed once, nothing twice', async () => {
    const ep = await store.write(createEndpoint(tenant, { url: 'http://127.0.0.1:9/all', events: ['batch.finished', 'item.failed'] }));
    await store.write(createEndpoint(tenant, { url: 'http://127.0.0.1:9/batches', events: ['batch.succeeded'] }));
    const header = batchHeaderSchema.parse({ runtime: 'indexed-job', template: { image: 'busybox' }, retry: { backoffLimitPerItem: 0 } });
    const id = await store.write(createBatch(tenant, header, items(3)));
    const obs = { completed: [{ first: 0, last: 0 }], failed: [{ first: 1, last: 2 }], running: new Map<number, number>(), attempts: [] };
    expect(await store.write(applyKubernetesObservation(id, obs))).toBe(true);
    await store.write(applyKubernetesObservation(id, obs));
    const evs = await events();
    expect(evs.map((e) => e.type)).toEqual(['item.failed', 'item.failed', 'batch.failed']);
    expect(JSON.parse(evs[1].payload).data).toMatchObject({ batchId: id, index: 2, customId: 'c2', reason: 'BackoffLimitExceeded' });
    expect(JSON.parse(evs[2].payload).data).toMatchObject({ phase: 'Failed', completedIndexes: '0', failedIndexes: '1,2', counts: { total: 3, succeeded: 1, failed: 2 } });
    // only the endpoint whose filter matches gets deliveries
    expect(new Set((await deliveries()).map((d) => d.endpointId))).toEqual(new Set([ep.id]));
  });

  it('worker reports: nobody subscribed writes nothing; a disabled endpoint gets nothing', async () => {
    const ep = await store.write(createEndpoint(tenant, { url: 'http://127.0.0.1:9/x', events: ['item.failed', 'batch.finished'] }));
    await store.write(updateEndpoint(tenant, ep.id, { enabled: false }));
    const header = batchHeaderSchema.parse({ task: 'rev', retry: { backoffLimitPerItem: 0 } });
    const id = await store.write(createBatch(tenant, header, items(1)));
    await running(id, 1);
    await store.write(applyReports(id, null, [{ i: 0, a: 1, outcome: 'failed', exitCode: 1, error: 'boom' }]));
    expect(await store.read(value('SELECT phase FROM batches WHERE id = ?', id))).toBe('Failed');
    expect(await events()).toEqual([]);
  });

  it("worker reports: the batch's own webhook gets item.failed and the batch event", async () => {
    const header = batchHeaderSchema.parse({ task: 'rev', retry: { backoffLimitPerItem: 0 }, webhook: { url: 'http://127.0.0.1:9/own', events: ['item.failed', 'batch.failed'] } });
    const id = await store.write(createBatch(tenant, header, items(2)));
    await running(id, 2);
    await store.write(applyReports(id, null, [
      { i: 0, a: 1, outcome: 'succeeded', result: 'ok' },
      { i: 1, a: 1, outcome: 'failed', exitCode: 2, error: 'x'.repeat(5000) },
    ]));
    const evs = await events();
    expect(evs.map((e) => e.type)).toEqual(['item.failed', 'batch.failed']);
    expect(JSON.parse(evs[0].payload).data.error).toHaveLength(1024);
    expect(await deliveries()).toEqual([
      { endpointId: null, url: 'http://127.0.0.1:9/own', status: 'pending' },
      { endpointId: null, url: 'http://127.0.0.1:9/own', status: 'pending' },
    ]);
  });
});
