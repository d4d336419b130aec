import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import type { ItemReport } from '../../src/contracts/item-report.js';
import { createBatch } from '../../src/store/batch-create.js';
import { resultPage } from '../../src/store/item-queries.js';
import { releaseLeases } from '../../src/store/leases.js';
import { all, run } from '../../src/store/op.js';
import { applyReportGroup, applyReports } from '../../src/store/reports.js';
import type { Store } from '../../src/store/store.js';
import { createTenantForKey } from '../../src/store/tenants.js';
import { attemptHistory } from '../helpers/attempt-history.js';
import { newDatabaseUrl, openTestStore } from '../helpers/test-store.js';

/**
 * A succeeded attempt is kept in its item's row, not as an `attempts` row (src/store/reports.ts).
 * On the run's real store: the attempt history and the results' attempt counts show it exactly as
 * a row would, next to failed attempts, next to a row recorded before the change, and through
 * every path that records a success (a report, a group of reports, the API's result PUT).
 */
describe('a succeeded attempt kept in its item row', () => {
  let store: Store | undefined;
  afterEach(() => store?.close());

  async function batchOf(n: number) {
    store = await openTestStore(await newDatabaseUrl(fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-succeeded-'))));
    const tenant = await store.write(createTenantForKey('k', 't'));
    const header = batchHeaderSchema.parse({ task: 'noop', parallelism: 100 });
    const id = await store.write(createBatch(tenant, header, Array.from({ length: n }, (_, i) => ({ input: JSON.stringify(i), customId: null }))));
    return { s: store, id };
  }

  const ok = (i: number, a: number, extra: Partial<ItemReport> = {}): ItemReport => ({
    i,
    a,
    outcome: 'succeeded',
    result: { i },
    worker: `w${i}`,
    startedAt: 1_000 + i,
    finishedAt: 2_000 + i,
    ...extra,
  });

  it('shows what the worker reported, once, with no attempts row, whichever path recorded it', async () => {
    const { s, id } = await batchOf(4);
    const leases = await s.write(releaseLeases(id, 'noop', 4, 1, 500));
    // one report alone, then a group of two (the set-based path on PostgreSQL)
    await s.write(applyReports(id, leases[0].leaseId, [ok(0, 1, { exitCode: 0 })], 3_000));
    await s.write(
      applyReportGroup(
        id,
        [
          { leaseId: leases[1].leaseId, items: [ok(1, 1, { httpStatus: 200 })] },
          { leaseId: leases[2].leaseId, items: [ok(2, 1)] },
        ],
        3_000,
      ),
    );
    // the API's result PUT names no lease
    await s.write(applyReports(id, null, [ok(3, 1)], 3_000));

    const history = await s.read(attemptHistory(id, [0, 1, 2, 3]));
    expect(history.map((a) => ({ ...a }))).toEqual([
      { batchId: id, idx: 0, attempt: 1, outcome: 'succeeded', exitCode: 0, httpStatus: null, condition: null, error: null, decision: null, worker: 'w0', startedAt: 1_000, finishedAt: 2_000 },
      { batchId: id, idx: 1, attempt: 1, outcome: 'succeeded', exitCode: null, httpStatus: 200, condition: null, error: null, decision: null, worker: 'w1', startedAt: 1_001, finishedAt: 2_001 },
      { batchId: id, idx: 2, attempt: 1, outcome: 'succeeded', exitCode: null, httpStatus: null, condition: null, error: null, decision: null, worker: 'w2', startedAt: 1_002, finishedAt: 2_002 },
      { batchId: id, idx: 3, attempt: 1, outcome: 'succeeded', exitCode: null, httpStatus: null, condition: null, error: null, decision: null, worker: 'w3', startedAt: 1_003, finishedAt: 2_003 },
    ]);
    expect(await s.read(all('SELECT idx FROM attempts WHERE batch_id = ?', id))).toEqual([]);
    const page = await s.read(resultPage(id, -1, 10));
    expect(page.map((r) => [r.idx, r.status, Number(r.attemptCount)])).toEqual([
      [0, 'succeeded', 1],
      [1, 'succeeded', 1],
      [2, 'succeeded', 1],
      [3, 'succeeded', 1],
    ]);
  });

  it('follows the failed attempts before it, in order', async () => {
    const { s, id } = await batchOf(1);
    const first = await s.write(releaseLeases(id, 'noop', 1, 1, 500));
    await s.write(applyReports(id, first[0].leaseId, [{ i: 0, a: 1, outcome: 'failed', exitCode: 3, error: 'boom', startedAt: 600, finishedAt: 700 }], 800));
    // the retry's backoff has passed by 10 minutes later
    const second = await s.write(releaseLeases(id, 'noop', 1, 1, 600_000));
    expect(second[0].items.map((it) => it.attempt)).toEqual([2]);
    await s.write(applyReports(id, second[0].leaseId, [ok(0, 2, { exitCode: 0 })], 600_100));

    const history = await s.read(attemptHistory(id, [0]));
    expect(history.map((a) => [a.attempt, a.outcome, a.exitCode, a.error])).toEqual([
      [1, 'failed', 3, 'boom'],
      [2, 'succeeded', 0, null],
    ]);
    expect((await s.read(resultPage(id, -1, 10))).map((r) => Number(r.attemptCount))).toEqual([2]);
  });

  it('is shown once when a row holds it too: a success with an error, or one recorded before the change', async () => {
    const { s, id } = await batchOf(2);
    const leases = await s.write(releaseLeases(id, 'noop', 2, 1, 500));
    // a success that carries an error gets its row, with the error
    await s.write(applyReportGroup(id, [{ leaseId: leases[0].leaseId, items: [ok(0, 1, { error: 'a warning on stderr' })] }, { leaseId: leases[1].leaseId, items: [ok(1, 1)] }], 3_000));
    // item 1 as an older server left it: an attempts row, nothing about the attempt in the item row
    await s.write(run('UPDATE items SET worker = NULL, attempt_started_at = NULL, attempt_finished_at = NULL WHERE batch_id = ? AND idx = 1', id));
    await s.write(
      run(
        `INSERT INTO attempts (batch_id, idx, attempt, outcome, worker, started_at, finished_at) VALUES (?, 1, 1, 'succeeded', 'old-worker', 10, 20)`,
        id,
      ),
    );

    const history = await s.read(attemptHistory(id, [0, 1]));
    expect(history.map((a) => [a.idx, a.attempt, a.outcome, a.worker, a.error])).toEqual([
      [0, 1, 'succeeded', 'w0', 'a warning on stderr'],
      [1, 1, 'succeeded', 'old-worker', null],
    ]);
    expect((await s.read(resultPage(id, -1, 10))).map((r) => Number(r.attemptCount))).toEqual([1, 1]);
  });

  it('keeps a worker name with half of a UTF-16 pair, as U+FFFD on either store', async () => {
    const { s, id } = await batchOf(2);
    const leases = await s.write(releaseLeases(id, 'noop', 2, 1, 500));
    const results = await s.write(
      applyReportGroup(
        id,
        [
          { leaseId: leases[0].leaseId, items: [ok(0, 1, { worker: 'w\ud800x' })] },
          { leaseId: leases[1].leaseId, items: [ok(1, 1, { worker: 'w\udc00' })] },
        ],
        3_000,
      ),
    );
    expect(results.map((r) => r.succeeded)).toEqual([1, 1]);
    expect((await s.read(attemptHistory(id, [0, 1]))).map((a) => a.worker)).toEqual(['w\ufffdx', 'w\ufffd']);
  });
});
