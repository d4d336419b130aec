import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { createBatch } from '../../src/store/batch-create.js';
import { releaseLeases } from '../../src/store/leases.js';
import { all, value, type Op } from '../../src/store/op.js';
import { openStore } from '../../src/store/open-store.js';
import { applyReports } from '../../src/store/reports.js';
import type { Store } from '../../src/store/store.js';
import { createTenantForKey } from '../../src/store/tenants.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * The hot statements of a batch that PostgreSQL has no planner statistics for yet (autovacuum
 * analyzes a new batch's items a minute or so after its ingest; here it is off, so the table stays
 * unanalyzed): a release and a worker's report must read about the rows they move, not every item
 * of the batch. Counted with pg_stat_get_xact_tuples_fetched (heap rows the transaction fetched
 * through index and bitmap scans), read in the same transaction as the operation.
 * Its own cluster: it needs a database whose autovacuum it can switch off.
 */

const ITEMS = 50_000;
let cluster: TestPostgres;
let store: Store;
let batchId: string;

beforeAll(async () => {
  cluster = await startTestPostgres();
  store = await openStore({ kind: 'postgres', url: cluster.url, poolSize: 2, statementTimeoutMs: 30_000, connectTimeoutMs: 5000 });
  await cluster.sql('ALTER TABLE items SET (autovacuum_enabled = false)', [], 'fanout_test');
  const tenant = await store.write(createTenantForKey('k', 't'));
  const header = batchHeaderSchema.parse({ task: 'noop', parallelism: 1_000_000 });
  const rows = Array.from({ length: ITEMS }, (_, i) => ({ input: JSON.stringify(`item-${i}`), customId: null }));
  batchId = await store.write(createBatch(tenant, header, rows));
});

afterAll(async () => {
  await store?.close();
  await cluster?.stop();
});

/** `op`, and the item rows its transaction fetched. */
function* withItemRowsFetched<T>(op: Op<T>): Op<{ result: T; fetched: number }> {
  const result = yield* op;
  const fetched = (yield* value<number>("SELECT pg_stat_get_xact_tuples_fetched('items'::regclass)"))!;
  return { result, fetched };
}

describe('a batch PostgreSQL has no statistics for', () => {
  it('has none: the table was never analyzed', async () => {
    const [row] = await cluster.sql<{ analyzed: number }>(
      "SELECT (coalesce(last_analyze, last_autoanalyze) IS NOT NULL)::int AS analyzed FROM pg_stat_user_tables WHERE relname = 'items'",
      [],
      'fanout_test',
    );
    expect(row.analyzed).toBe(0);
  });

  it('releases 16 leases from the middle of the batch reading the released rows only, and reports 115 successes reading those', async () => {
    const now = Date.now();
    // Move the release cursor into the middle of the batch first.
    await store.write(releaseLeases(batchId, 'noop', 20_000, 256, now));

    // in 16 leases: marked running by one UPDATE for all of them
    const release = await store.write(withItemRowsFetched(releaseLeases(batchId, 'noop', 1_024, 64, now)));
    expect(release.result).toHaveLength(16);
    const items = release.result.flatMap((l) => l.items);
    expect(items.map((i) => i.index)).toEqual(Array.from({ length: 1_024 }, (_, k) => 20_000 + k));
    // The items read once, and once more by the UPDATE that marks them running.
    expect(release.fetched).toBeLessThanOrEqual(3 * 1_024);
    // each item in the lease that carries it, running its first attempt
    const rows = await store.read(all<{ leaseId: string; status: string; attempt: number }>('SELECT lease_id AS "leaseId", status, attempt FROM items WHERE batch_id = ? AND idx BETWEEN 20000 AND 21023 ORDER BY idx', batchId));
    expect(rows).toEqual(release.result.flatMap((l) => l.items.map(() => ({ leaseId: l.leaseId, status: 'running', attempt: 1 }))));
    expect(await store.read(all('SELECT id FROM leases WHERE id = ANY(?::text[]) ORDER BY id', release.result.map((l) => l.leaseId)))).toHaveLength(16);

    const reported = items.slice(0, 115).map((i) => ({ i: i.index, a: i.attempt, outcome: 'succeeded' as const, result: i.index }));
    const report = await store.write(withItemRowsFetched(applyReports(batchId, release.result[0].leaseId, reported, now)));
    expect(report.result.succeeded).toBe(115);
    // Each reported item has a dead version (before the release) next to its live one.
    expect(report.fetched).toBeLessThanOrEqual(3 * 115);
  });
});
