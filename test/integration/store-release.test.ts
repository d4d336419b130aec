import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { createBatch } from '../../src/store/batch-create.js';
import { getBatchById } from '../../src/store/batch-queries.js';
import type { Store } from '../../src/store/store.js';
import { nextRetryAt, releaseLeases } from '../../src/store/leases.js';
import { applyReports } from '../../src/store/reports.js';
import { run, value } from '../../src/store/op.js';
import { newDatabaseUrl, openTestStore } from '../helpers/test-store.js';
import { createTenantForKey } from '../../src/store/tenants.js';

/** The release operation against the run's real store: what goes out, in which leases, and the counters. */
describe('releaseLeases', () => {
  let store: Store | undefined;
  afterEach(() => store?.close());

  async function setup(items: number) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-release-'));
    store = await openTestStore(await newDatabaseUrl(dir));
    const tenant = await store.write(createTenantForKey('k', 't'));
    const header = batchHeaderSchema.parse({ task: 'noop', parallelism: 1_000_000, retry: { backoffSeconds: 10 } });
    const rows = Array.from({ length: items }, (_, i) => ({ input: JSON.stringify(`item-${i}`), customId: null }));
    const id = await store.write(createBatch(tenant, header, rows));
    return { id, s: store };
  }

  it('releases 150,000 items in one call (more than a spread argument list can hold)', async () => {
    const { id, s } = await setup(150_000);
    const out = await s.write(releaseLeases(id, 'noop', 150_000, 256, Date.now()));
    const released = out.flatMap((l) => l.items);
    expect(released).toHaveLength(150_000);
    expect(released[149_999]).toEqual({ index: 149_999, attempt: 1, input: '"item-149999"' });
    expect(new Set(out.map((l) => l.leaseId)).size).toBe(out.length);
    const row = (await s.read(getBatchById(id)))!;
    expect({ pending: row.pending, running: row.running, cursor: row.releaseCursor }).toEqual({ pending: 0, running: 150_000, cursor: 150_000 });
    expect(await s.read(value("SELECT count(*) FROM items WHERE batch_id = ? AND status = 'running' AND attempt = 1", id))).toBe(150_000);
  });

  it('releases the next pending items past a run of items after the cursor that are not pending', async () => {
    const { id, s } = await setup(10);
    await s.write(releaseLeases(id, 'noop', 2, 2, 1_000));
    // Items 2..4, the next three after the cursor, are no longer pending.
    await s.write(run("UPDATE items SET status = 'cancelled' WHERE batch_id = ? AND idx BETWEEN 2 AND 4", id));
    const out = await s.write(releaseLeases(id, 'noop', 3, 3, 2_000));
    expect(out.flatMap((l) => l.items.map((it) => it.index))).toEqual([5, 6, 7]);
    expect((await s.read(getBatchById(id)))!.releaseCursor).toBe(8);
    const rest = await s.write(releaseLeases(id, 'noop', 5, 5, 3_000));
    expect(rest.flatMap((l) => l.items.map((it) => it.index))).toEqual([8, 9]);
  });

  it('releases retries that are due before fresh items, and holds back those in backoff', async () => {
    const { id, s } = await setup(10);
    const first = await s.write(releaseLeases(id, 'noop', 3, 1, 1_000));
    expect(first.map((l) => l.items[0].index)).toEqual([0, 1, 2]);
    // item 1 fails (retried after 10 s of backoff), item 2 is handed back (due at once)
    await s.write(applyReports(id, first[1].leaseId, [{ i: 1, a: 1, outcome: 'failed', exitCode: 1 }], 2_000));
    await s.write(applyReports(id, first[2].leaseId, [{ i: 2, a: 1, outcome: 'returned' }], 2_000));
    const second = await s.write(releaseLeases(id, 'noop', 3, 3, 3_000));
    expect(second.flatMap((l) => l.items.map((it) => [it.index, it.attempt]))).toEqual([[2, 2], [3, 1], [4, 1]]);
    expect(await s.read(nextRetryAt(id))).toBe(12_000);
    const third = await s.write(releaseLeases(id, 'noop', 1, 1, 12_000));
    expect(third[0].items).toEqual([{ index: 1, attempt: 2, input: '"item-1"' }]);
  });
});
