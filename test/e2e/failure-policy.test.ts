import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { allItems, indexesOf, newCluster, type Cluster } from '../helpers/cluster.js';

/**
 * "Handling retriable and non-retriable pod failures with Pod failure policy", replayed with exit
 * codes of a worker-registered command task: FailBatch (FailJob), FailItem (FailIndex),
 * backoffLimitPerItem (backoffLimitPerIndex).
 */

// exit 42 for "boom", 3 for "fatal", 1 for "bad"; echo the item otherwise
const JUDGE = 'x=$(cat); sleep 0.2; case "$x" in boom) exit 42;; fatal) exit 3;; bad) echo "bad input" >&2; exit 1;; esac; echo "ok $x"';

describe('e2e: failure policy', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = newCluster(inject('redisUrl'));
    await c.up(['--task', `judge=${JUDGE}`]);
  });
  afterAll(async () => c?.stopAll());

  it('FailBatch on exit code 42 fails the batch at once and cancels the rest, without retries', async () => {
    // job-pod-failure-policy-failjob: completions 8, parallelism 2
    const items = ['a', 'boom', 'c', 'd', 'e', 'f', 'g', 'h'];
    const batch = await c.client.createBatch({
      task: 'judge',
      items,
      parallelism: 2,
      retry: { backoffLimitPerItem: 6, rules: [{ action: 'FailBatch', onExitCodes: { operator: 'In', values: [42] } }] },
    });
    const done = await c.client.waitForPhase(batch.id);
    expect(done.status.phase).toBe('Failed');
    const failed = done.status.conditions.find((x: any) => x.type === 'Failed');
    expect(failed).toMatchObject({ status: 'True', reason: 'FailBatchRule' });
    expect(failed.message).toMatch(/item 1/);
    expect(failed.message).toMatch(/exit code 42/);
    expect(done.status.failedIndexes).toBe('1');
    expect(done.status.counts.failed).toBe(1);
    expect(done.status.counts.cancelled).toBeGreaterThanOrEqual(5);
    expect(done.status.counts.pending + done.status.counts.running).toBe(0);
    // "at once": the default backoff would have retried for several seconds
    expect(Date.parse(done.status.completionTime) - Date.parse(done.status.startTime)).toBeLessThan(5000);

    const all = await allItems(c.client, batch.id);
    expect(all[1]).toMatchObject({ status: 'failed', reason: 'FailBatchRule' });
    expect(all[1].attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'failed', exitCode: 42, decision: 'FailBatchRule' })]);
    for (const it of all.filter((x) => x.status === 'cancelled')) {
      // a cancelled item never got a failed attempt and is never retried
      expect(it.attempts.filter((a: any) => a.outcome === 'failed')).toEqual([]);
    }
    // nothing runs after the batch failed: the counts stay put
    await new Promise((r) => setTimeout(r, 1500));
    const later = await c.client.getBatch(batch.id);
    expect(later.status.counts).toEqual(done.status.counts);
    expect(later.status.phase).toBe('Failed');
  });

  it('backoffLimitPerItem 1 and a FailItem rule on exit code 3: failedIndexes lists exactly the failed items', async () => {
    // job-backoff-limit-per-index-failindex: one index retried once, one not retried at all
    const items = ['bad', 'fatal', 'c', 'd', 'bad', 'f'];
    const batch = await c.client.createBatch({
      task: 'judge',
      items,
      parallelism: 2,
      retry: { backoffLimitPerItem: 1, backoffSeconds: 0.2, rules: [{ action: 'FailItem', onExitCodes: { operator: 'In', values: [3] } }] },
    });
    const done = await c.client.waitForPhase(batch.id);
    expect(done.status.phase).toBe('Failed');
    expect(indexesOf(done.status.failedIndexes)).toEqual([0, 1, 4]);
    expect(indexesOf(done.status.completedIndexes)).toEqual([2, 3, 5]);
    expect(done.status.counts).toMatchObject({ total: 6, succeeded: 3, failed: 3, cancelled: 0 });
    expect(done.status.conditions.find((x: any) => x.type === 'Failed')).toMatchObject({ reason: 'ItemsFailed' });

    const all = await allItems(c.client, batch.id);
    for (const i of [0, 4]) {
      expect(all[i]).toMatchObject({ status: 'failed', reason: 'BackoffLimitExceeded' });
      expect(all[i].attempts.map((a: any) => [a.attempt, a.outcome, a.exitCode])).toEqual([
        [1, 'failed', 1],
        [2, 'failed', 1],
      ]);
      expect(all[i].attempts[0].error).toMatch(/bad input/);
    }
    expect(all[1]).toMatchObject({ status: 'failed', reason: 'FailItemRule' });
    expect(all[1].attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'failed', exitCode: 3, decision: 'FailItemRule' })]);
    for (const i of [2, 3, 5]) {
      expect(all[i].status).toBe('succeeded');
      expect(all[i].attempts).toHaveLength(1);
    }
    // failed pods in the reference's terms: 2 + 1 + 2
    expect(all.flatMap((x) => x.attempts).filter((a: any) => a.outcome === 'failed')).toHaveLength(5);
    const results = await c.client.results(batch.id);
    expect(results.map((r) => [r.status, r.result, r.attempts])).toEqual([
      ['failed', null, 2],
      ['failed', null, 1],
      ['succeeded', 'ok c', 1],
      ['succeeded', 'ok d', 1],
      ['failed', null, 2],
      ['succeeded', 'ok f', 1],
    ]);
  });

  it('maxFailedItems ends the batch once more items failed than allowed', async () => {
    const items = ['fatal', 'fatal', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    const batch = await c.client.createBatch({
      task: 'judge',
      items,
      parallelism: 1,
      retry: { maxFailedItems: 1, rules: [{ action: 'FailItem', onExitCodes: { operator: 'In', values: [3] } }] },
    });
    const done = await c.client.waitForPhase(batch.id);
    expect(done.status.phase).toBe('Failed');
    expect(done.status.conditions.find((x: any) => x.type === 'Failed')).toMatchObject({ reason: 'MaxFailedItemsExceeded' });
    expect(indexesOf(done.status.failedIndexes)).toEqual([0, 1]);
    expect(done.status.counts.cancelled).toBeGreaterThanOrEqual(6);
  });
});
