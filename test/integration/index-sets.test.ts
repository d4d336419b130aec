import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { createBatch } from '../../src/store/batch-create.js';
import { getBatchById } from '../../src/store/batch-queries.js';
import { indexSets } from '../../src/store/item-queries.js';
import { releaseLeases } from '../../src/store/leases.js';
import { applyReports } from '../../src/store/reports.js';
import type { Store } from '../../src/store/store.js';
import { createTenantForKey } from '../../src/store/tenants.js';
import { newDatabaseUrl, openTestStore } from '../helpers/test-store.js';

/**
 * completedIndexes / failedIndexes (src/store/item-queries.ts) on the run's real store: given the
 * batch's counts, a set of none or of every item is not scanned for, and reads the same as the scan.
 */
describe('indexSets', () => {
  let store: Store | undefined;
  afterEach(() => store?.close());

  it.each([
    { n: 1, outcomes: ['succeeded'], completed: '0', failed: '' },
    { n: 2, outcomes: ['succeeded', 'succeeded'], completed: '0,1', failed: '' },
    { n: 5, outcomes: Array(5).fill('succeeded'), completed: '0-4', failed: '' },
    { n: 5, outcomes: Array(5).fill('failed'), completed: '', failed: '0-4' },
    { n: 5, outcomes: ['succeeded', 'failed', 'succeeded', 'succeeded', 'failed'], completed: '0,2,3', failed: '1,4' },
  ])('$n items $outcomes: "$completed" and "$failed", with the counts as without', async ({ n, outcomes, completed, failed }) => {
    store = await openTestStore(await newDatabaseUrl(fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-index-sets-'))));
    const tenant = await store.write(createTenantForKey('k', 't'));
    const header = batchHeaderSchema.parse({ task: 'noop', parallelism: 100, retry: { backoffLimitPerItem: 0 } });
    const id = await store.write(createBatch(tenant, header, Array.from({ length: n }, (_, i) => ({ input: JSON.stringify(i), customId: null }))));
    const [lease] = await store.write(releaseLeases(id, 'noop', n, n, 1_000));
    await store.write(applyReports(id, lease.leaseId, lease.items.map((it) => ({ i: it.index, a: it.attempt, outcome: outcomes[it.index] as 'succeeded' | 'failed' })), 2_000));
    const row = (await store.read(getBatchById(id)))!;
    expect({ total: row.total, succeeded: row.succeeded, failed: row.failed }).toEqual({
      total: n,
      succeeded: outcomes.filter((o) => o === 'succeeded').length,
      failed: outcomes.filter((o) => o === 'failed').length,
    });
    const expected = { completedIndexes: completed, failedIndexes: failed };
    expect(await store.read(indexSets(id, row))).toEqual(expected);
    // the scan of every set reads the same
    expect(await store.read(indexSets(id))).toEqual(expected);
  });
});
