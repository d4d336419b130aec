import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { createBatch } from '../../src/store/batch-create.js';
import { getBatchById } from '../../src/store/batch-queries.js';
import { openStore, type StoreHandle } from '../../src/store/db.js';
import { LeaseStore } from '../../src/store/leases.js';
import { ReportStore } from '../../src/store/reports.js';
import { createTenantForKey } from '../../src/store/tenants.js';

/** The release transaction against a real SQLite file: what goes out, in which leases, and the counters. */
describe('LeaseStore.release', () => {
  let store: StoreHandle | undefined;
  afterEach(() => store?.close());

  function setup(items: number) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-release-'));
    store = openStore(path.join(dir, 'fanout.db'));
    const tenant = createTenantForKey(store, 'k', 't');
    const header = batchHeaderSchema.parse({ task: 'noop', parallelism: 1_000_000, retry: { backoffSeconds: 10 } });
    const rows = Array.from({ length: items }, (_, i) => ({ input: JSON.stringify(`item-${i}`), customId: null }));
    const id = createBatch(store, tenant, header, rows);
    return { id, leases: new LeaseStore(store), reports: new ReportStore(store), s: store };
  }

  it('releases 150,000 items in one call (more than a spread argument list can hold)', () => {
    const { id, leases, s } = setup(150_000);
    const out = leases.release(id, 'noop', 0, 150_000, 256, Date.now());
    const released = out.flatMap((l) => l.items);
    expect(released).toHaveLength(150_000);
    expect(released[149_999]).toEqual({ index: 149_999, attempt: 1, input: '"item-149999"' });
    expect(new Set(out.map((l) => l.leaseId)).size).toBe(out.length);
    const row = getBatchById(s, id)!;
    expect({ pending: row.pending, running: row.running, cursor: row.releaseCursor }).toEqual({ pending: 0, running: 150_000, cursor: 150_000 });
    expect(s.sqlite.prepare("SELECT count(*) FROM items WHERE batch_id = ? AND status = 'running' AND attempt = 1").pluck().get(id)).toBe(150_000);
  });

  it('releases retries that are due before fresh items, and holds back those in backoff', () => {
    const { id, leases, reports } = setup(10);
    const first = leases.release(id, 'noop', 0, 3, 1, 1_000);
    expect(first.map((l) => l.items[0].index)).toEqual([0, 1, 2]);
    // item 1 fails (retried after 10 s of backoff), item 2 is handed back (due at once)
    reports.apply(id, first[1].leaseId, [{ i: 1, a: 1, outcome: 'failed', exitCode: 1 }], 2_000);
    reports.apply(id, first[2].leaseId, [{ i: 2, a: 1, outcome: 'returned' }], 2_000);
    const second = leases.release(id, 'noop', getBatchById(store!, id)!.releaseCursor, 3, 3, 3_000);
    expect(second.flatMap((l) => l.items.map((it) => [it.index, it.attempt]))).toEqual([[2, 2], [3, 1], [4, 1]]);
    expect(leases.nextRetryAt(id)).toBe(12_000);
    const third = leases.release(id, 'noop', getBatchById(store!, id)!.releaseCursor, 1, 1, 12_000);
    expect(third[0].items).toEqual([{ index: 1, attempt: 2, input: '"item-1"' }]);
  });
});
