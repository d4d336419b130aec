import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { allItems, maxOverlap, newCluster, type Cluster } from '../helpers/cluster.js';

/**
 * The examples of the Kubernetes documentation's Job task pages
 * (https://kubernetes.io/docs/tasks/job/, "the reference" of docs/architecture.md), replayed
 * through the HTTP API of real `fanout` processes. The client never sends a command: tasks are
 * registered by the workers.
 */

const FRUITS = ['apple', 'banana', 'cherry', 'date', 'fig', 'grape', 'lemon', 'melon', 'orange'];

describe('e2e: reference examples', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = newCluster(inject('redisUrl'));
    await c.up([
      '--task', 'expand=sh -c "echo Processing item $(cat)"',
      '--task', 'expand-env=echo "Processing item $ITEM"',
      '--task', 'expand-url=echo "Processing URL $URL"',
      '--task', 'rev=rev',
    ]);
  });
  afterAll(async () => c?.stopAll());

  it('Parallel Processing using Expansions: the item on stdin of a worker-registered task', async () => {
    const batch = await c.client.createBatch({ task: 'expand', labels: { jobgroup: 'jobexample' }, items: ['apple', 'banana', 'cherry'] });
    const done = await c.client.waitForPhase(batch.id);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.counts).toMatchObject({ total: 3, succeeded: 3, failed: 0 });
    const results = await c.client.results(batch.id);
    expect(results.map((r) => r.result)).toEqual(['Processing item apple', 'Processing item banana', 'Processing item cherry']);

    // kubectl get jobs -l jobgroup=jobexample
    const listed = await c.client.json('GET', '/v1/batches?labelSelector=jobgroup%3Djobexample');
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((b: any) => b.id)).toContain(batch.id);
    const other = await c.client.json('GET', '/v1/batches?labelSelector=jobgroup%3Dnothing');
    expect(other.body.items.map((b: any) => b.id)).not.toContain(batch.id);
  });

  it('Expansions with a template: env rendered per item from {{ item }} and {{ url }}', async () => {
    const plain = await c.client.createBatch({ task: 'expand-env', template: { env: { ITEM: '{{ item }}' } }, items: ['apple', 'banana', 'cherry'] });
    // the advanced (Jinja) example: several parameters per item
    const params = [
      { name: 'apple', url: 'http://dbpedia.org/resource/Apple' },
      { name: 'banana', url: 'http://dbpedia.org/resource/Banana' },
      { name: 'cherry', url: 'http://dbpedia.org/resource/Cherry' },
    ];
    const advanced = await c.client.createBatch({ task: 'expand-url', template: { env: { URL: '{{ url }}' } }, items: params });
    expect((await c.client.waitForPhase(plain.id)).status.phase).toBe('Succeeded');
    expect((await c.client.waitForPhase(advanced.id)).status.phase).toBe('Succeeded');
    expect((await c.client.results(plain.id)).map((r) => r.result)).toEqual(['Processing item apple', 'Processing item banana', 'Processing item cherry']);
    expect((await c.client.results(advanced.id)).map((r) => r.result)).toEqual(params.map((p) => `Processing URL ${p.url}`));
  });

  it('Indexed Job: rev over foo bar baz qux xyz with parallelism 3', async () => {
    const batch = await c.client.createBatch({ task: 'rev', items: ['foo', 'bar', 'baz', 'qux', 'xyz'], parallelism: 3 });
    const done = await c.client.waitForPhase(batch.id);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.completedIndexes).toBe('0-4');
    expect(done.status.failedIndexes).toBe('');
    expect(done.status.conditions).toEqual([expect.objectContaining({ type: 'Complete', status: 'True' })]);
    const results = await c.client.results(batch.id);
    expect(results.map((r) => [r.index, r.result, r.attempts])).toEqual([
      [0, 'oof', 1],
      [1, 'rab', 1],
      [2, 'zab', 1],
      [3, 'xuq', 1],
      [4, 'zyx', 1],
    ]);
  });

  it('Fine Parallel Processing Using a Work Queue: nine fruits, two worker processes, parallelism 2', { timeout: 90_000 }, async () => {
    const task = 'fruit=sleep 0.3; echo "$WORKER_NAME:$(cat)"';
    const env = { FANOUT_CONCURRENCY: '1' };
    await Promise.all([c.worker([task], { ...env, WORKER_NAME: 'w1' }), c.worker([task], { ...env, WORKER_NAME: 'w2' })]);

    const batch = await c.client.createBatch({ task: 'fruit', items: FRUITS, parallelism: 2 });
    const done = await c.client.waitForPhase(batch.id, undefined, 60_000);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.completedIndexes).toBe('0-8');

    const results = await c.client.results(batch.id);
    expect(results.map((r) => r.index)).toEqual(FRUITS.map((_, i) => i));
    const byWorker: Record<string, string[]> = {};
    for (const r of results) {
      const [worker, fruit] = String(r.result).split(':');
      expect(fruit).toBe(FRUITS[r.index]);
      (byWorker[worker] ??= []).push(fruit);
    }
    // every fruit exactly once, shared between both workers
    expect(Object.values(byWorker).flat().sort()).toEqual([...FRUITS].sort());
    expect(Object.keys(byWorker).sort()).toEqual(['w1', 'w2']);
    expect(byWorker.w1.length).toBeGreaterThanOrEqual(2);
    expect(byWorker.w2.length).toBeGreaterThanOrEqual(2);

    // parallelism respected, from the attempts the workers reported
    const items = await allItems(c.client, batch.id);
    const spans = items.map((it) => {
      expect(it.attempts).toHaveLength(1);
      const a = it.attempts[0];
      return [Date.parse(a.startedAt), Date.parse(a.finishedAt)] as [number, number];
    });
    expect(maxOverlap(spans)).toBeLessThanOrEqual(2);
  });
});
