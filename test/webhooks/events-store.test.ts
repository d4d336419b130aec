import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { createBatch } from '../../src/store/batch-create.js';
import { openStore, type StoreHandle } from '../../src/store/db.js';
import { KubernetesSync } from '../../src/store/kubernetes-sync.js';
import { ReportStore } from '../../src/store/reports.js';
import { createTenantForKey } from '../../src/store/tenants.js';
import { createEndpoint, updateEndpoint } from '../../src/store/webhook-endpoints.js';

/**
 * Events are written by the store transactions that make them true: the final transition and
 * items failing, from worker reports and from the Kubernetes sync. Real SQLite file.
 */

describe('webhook events in the store', () => {
  let store: StoreHandle;
  let tenant: string;
  beforeEach(() => {
    store = openStore(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-wh-')), 'fanout.db'));
    tenant = createTenantForKey(store, `k-${Math.random()}`, 't');
  });
  afterEach(() => store.close());

  const events = () => store.sqlite.prepare('SELECT type, payload FROM webhook_events ORDER BY created_at, rowid').all() as { type: string; payload: string }[];
  const deliveries = () => store.sqlite.prepare('SELECT endpoint_id AS endpointId, url, status FROM webhook_deliveries').all() as any[];
  const items = (n: number) => Array.from({ length: n }, (_, i) => ({ input: JSON.stringify(`i${i}`), customId: `c${i}` }));

  it('Kubernetes sync: item.failed per newly failed index, batch.failed once, nothing twice', () => {
    const ep = createEndpoint(store, tenant, { url: 'https://example.com/all', events: ['batch.finished', 'item.failed'] });
    createEndpoint(store, tenant, { url: 'https://example.com/batches', events: ['batch.succeeded'] });
    const header = batchHeaderSchema.parse({ runtime: 'indexed-job', template: { image: 'busybox' }, retry: { backoffLimitPerItem: 0 } });
    const id = createBatch(store, tenant, header, items(3));
    const sync = new KubernetesSync(store);
    const obs = { completed: [{ first: 0, last: 0 }], failed: [{ first: 1, last: 2 }], running: new Map<number, number>(), attempts: [] };
    expect(sync.apply(id, obs)).toBe(true);
    sync.apply(id, obs);
    const evs = events();
    expect(evs.map((e) => e.type)).toEqual(['item.failed', 'item.failed', 'batch.failed']);
    expect(JSON.parse(evs[1].payload).data).toMatchObject({ batchId: id, index: 2, customId: 'c2', reason: 'BackoffLimitExceeded' });
    expect(JSON.parse(evs[2].payload).data).toMatchObject({ phase: 'Failed', completedIndexes: '0', failedIndexes: '1,2', counts: { total: 3, succeeded: 1, failed: 2 } });
    // only the endpoint whose filter matches gets deliveries
    expect(new Set(deliveries().map((d) => d.endpointId))).toEqual(new Set([ep.id]));
  });

  it('worker reports: nobody subscribed writes nothing; a disabled endpoint gets nothing', () => {
    const ep = createEndpoint(store, tenant, { url: 'https://example.com/x', events: ['item.failed', 'batch.finished'] });
    updateEndpoint(store, tenant, ep.id, { enabled: false });
    const header = batchHeaderSchema.parse({ task: 'rev', retry: { backoffLimitPerItem: 0 } });
    const id = createBatch(store, tenant, header, items(1));
    store.sqlite.prepare("UPDATE items SET status = 'running', attempt = 1 WHERE batch_id = ?").run(id);
    store.sqlite.prepare('UPDATE batches SET pending = 0, running = 1 WHERE id = ?').run(id);
    new ReportStore(store).apply(id, null, [{ i: 0, a: 1, outcome: 'failed', exitCode: 1, error: 'boom' }]);
    expect(store.sqlite.prepare('SELECT phase FROM batches WHERE id = ?').pluck().get(id)).toBe('Failed');
    expect(events()).toEqual([]);
  });

  it("worker reports: the batch's own webhook gets item.failed and the batch event", () => {
    const header = batchHeaderSchema.parse({ task: 'rev', retry: { backoffLimitPerItem: 0 }, webhook: { url: 'https://example.com/own', events: ['item.failed', 'batch.failed'] } });
    const id = createBatch(store, tenant, header, items(2));
    store.sqlite.prepare("UPDATE items SET status = 'running', attempt = 1 WHERE batch_id = ?").run(id);
    store.sqlite.prepare('UPDATE batches SET pending = 0, running = 2 WHERE id = ?').run(id);
    new ReportStore(store).apply(id, null, [
      { i: 0, a: 1, outcome: 'succeeded', result: 'ok' },
      { i: 1, a: 1, outcome: 'failed', exitCode: 2, error: 'x'.repeat(5000) },
    ]);
    const evs = events();
    expect(evs.map((e) => e.type)).toEqual(['item.failed', 'batch.failed']);
    expect(JSON.parse(evs[0].payload).data.error).toHaveLength(1024);
    expect(deliveries()).toEqual([
      { endpointId: null, url: 'https://example.com/own', status: 'pending' },
      { endpointId: null, url: 'https://example.com/own', status: 'pending' },
    ]);
  });
});
