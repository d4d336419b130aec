import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { ReportRecorder } from '../../src/runtimes/queue/report-recorder.js';
import { createBatch } from '../../src/store/batch-create.js';
import { getBatchById } from '../../src/store/batch-queries.js';
import { releaseLeases } from '../../src/store/leases.js';
import { applyReportGroup } from '../../src/store/reports.js';
import { all, pluck, type Op } from '../../src/store/op.js';
import type { Store } from '../../src/store/store.js';
import { createTenantForKey } from '../../src/store/tenants.js';
import { attemptHistory } from '../helpers/attempt-history.js';
import { newDatabaseUrl, openTestStore } from '../helpers/test-store.js';

/**
 * The queue runtime's report recorder on the run's real store: reports of one batch that arrive
 * together are recorded in fewer transactions than reports, each exactly once, with each
 * caller getting its own report's result.
 */
describe('ReportRecorder', () => {
  let store: Store | undefined;
  afterEach(() => store?.close());

  it('records 12 concurrent reports of one batch in fewer writes, every item once', async () => {
    store = await openTestStore(await newDatabaseUrl(fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-recorder-'))));
    const tenant = await store.write(createTenantForKey('k', 't'));
    const header = batchHeaderSchema.parse({ task: 'noop', parallelism: 100 });
    const id = await store.write(createBatch(tenant, header, Array.from({ length: 12 }, (_, i) => ({ input: JSON.stringify(i), customId: null }))));
    const leases = await store.write(releaseLeases(id, 'noop', 12, 1, Date.now()));
    expect(leases).toHaveLength(12);

    // The real store, with its writes counted.
    let writes = 0;
    const real = store;
    const counted: Store = { ...real, read: (op) => real.read(op), write: <T>(op: Op<T>) => ((writes += 1), real.write(op)) };
    const recorder = new ReportRecorder(counted, () => false);
    const results = await Promise.all(
      leases.map((l) => recorder.record({ batchId: id, leaseId: l.leaseId, items: l.items.map((it) => ({ i: it.index, a: it.attempt, outcome: 'succeeded' as const, result: it.index })) })),
    );
    expect(results.map((r) => r.succeeded)).toEqual(Array(12).fill(1));
    expect(writes).toBeLessThan(12);
    const batch = (await store.read(getBatchById(id)))!;
    expect({ succeeded: batch.succeeded, running: batch.running, phase: batch.phase }).toEqual({ succeeded: 12, running: 0, phase: 'Succeeded' });

    // The same reports again (a redelivered job): nothing more is recorded.
    const again = await Promise.all(leases.map((l) => recorder.record({ batchId: id, leaseId: l.leaseId, items: l.items.map((it) => ({ i: it.index, a: it.attempt, outcome: 'succeeded' as const })) })));
    expect(again.every((r) => r.applied === 0)).toBe(true);
  });

  it('a group of success reports records each current attempt once, credited to the first report naming it', async () => {
    store = await openTestStore(await newDatabaseUrl(fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-recorder-'))));
    const tenant = await store.write(createTenantForKey('k', 't'));
    const header = batchHeaderSchema.parse({ task: 'noop', parallelism: 100 });
    const id = await store.write(createBatch(tenant, header, Array.from({ length: 6 }, (_, i) => ({ input: JSON.stringify(i), customId: null }))));
    const leases = await store.write(releaseLeases(id, 'noop', 6, 1, Date.now()));
    const success = (i: number, a: number) => ({ i, a, outcome: 'succeeded' as const, result: `r${i}.${a}` });
    const results = await store.write(
      applyReportGroup(id, [
        { leaseId: leases[0].leaseId, items: [success(0, 1)] },
        { leaseId: leases[1].leaseId, items: [success(1, 1)] },
        // the same report again (a redelivered job) in the same group
        { leaseId: leases[0].leaseId, items: [success(0, 1)] },
        // an attempt item 2 never ran, then its current one
        { leaseId: leases[2].leaseId, items: [success(2, 7)] },
        { leaseId: leases[2].leaseId, items: [success(2, 1)] },
      ]),
    );
    expect(results.map((r) => r.succeeded)).toEqual([1, 1, 0, 0, 1]);
    const batch = (await store.read(getBatchById(id)))!;
    expect({ succeeded: batch.succeeded, running: batch.running }).toEqual({ succeeded: 3, running: 3 });
    // Each item's history shows its current attempt, once; none for the attempt item 2 never ran.
    const history = await store.read(attemptHistory(id, [0, 1, 2, 3]));
    expect(history.map((a) => ({ idx: a.idx, attempt: a.attempt, outcome: a.outcome }))).toEqual([
      { idx: 0, attempt: 1, outcome: 'succeeded' },
      { idx: 1, attempt: 1, outcome: 'succeeded' },
      { idx: 2, attempt: 1, outcome: 'succeeded' },
    ]);
    // kept in the item rows: a success writes no attempts row
    expect(await store.read(all('SELECT idx FROM attempts WHERE batch_id = ?', id))).toEqual([]);
    expect(await store.read(all('SELECT idx, status, result FROM items WHERE batch_id = ? AND idx < 4 ORDER BY idx', id))).toEqual([
      { idx: 0, status: 'succeeded', result: '"r0.1"' },
      { idx: 1, status: 'succeeded', result: '"r1.1"' },
      { idx: 2, status: 'succeeded', result: '"r2.1"' },
      { idx: 3, status: 'running', result: null },
    ]);
    // The reported leases are settled; the others are still out.
    expect(await store.read(pluck('SELECT id FROM leases WHERE batch_id = ? ORDER BY id', id))).toEqual(leases.slice(3).map((l) => l.leaseId).sort());
  });
});
