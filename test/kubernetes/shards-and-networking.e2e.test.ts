import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.js';
import { resultsOf, startFanoutOnKubernetes, type FanoutOnKubernetes } from './fanout.js';

/**
 * Big batches as several Indexed Jobs (shards; 2 indexes each here instead of 100,000), the
 * headless Service of the pod-to-pod pattern, and finished Jobs left to their TTL.
 */

let f: FanoutOnKubernetes;

beforeAll(async () => {
  f = await startFanoutOnKubernetes('shards', { FANOUT_KUBERNETES_SHARD_SIZE: '2' });
});

afterAll(async () => {
  await f?.stop();
});

describe('indexed-job shards, headless networking and TTL', () => {
  it('runs a batch as one Indexed Job per shard, one shard after the other, with item indexes intact', async () => {
    const words = ['one', 'two', 'three', 'four', 'five'];
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      template: { image: 'fanout:test', command: ['fanout', 'exec', '--', 'rev'] },
      items: words,
      parallelism: 2,
    });
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed']);
    expect(batch.status.phase).toBe('Succeeded');
    expect(batch.status.completedIndexes).toBe('0-4');
    expect((await resultsOf(f.client, created.id)).map((r) => r.result)).toEqual(words.map((w) => [...w].reverse().join('')));

    const jobs = (await f.jobsOf(created.id)).sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!));
    expect(jobs.map((j) => [j.metadata?.labels?.['fanout.dev/offset'], j.spec?.completions, j.status?.completedIndexes])).toEqual([
      ['0', 2, '0,1'],
      ['2', 2, '0,1'],
      ['4', 1, '0'],
    ]);
    // A shard starts once the one before it finished: parallelism holds for the whole batch.
    for (let k = 1; k < jobs.length; k++) {
      const before = new Date(jobs[k - 1].status!.completionTime!).getTime();
      expect(new Date(jobs[k].metadata!.creationTimestamp!).getTime()).toBeGreaterThanOrEqual(before);
    }
  });

  it('creates a shard’s Job again when it is deleted before it finished, and never re-runs a finished shard', async () => {
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      template: { image: 'fanout:test', command: ['fanout', 'exec', '--', 'sh', '-c', 'sleep 1; cat'] },
      items: ['a', 'b', 'c', 'd'],
      parallelism: 2,
    });
    // The second shard (offset 2): delete it while it runs.
    const second = await waitFor(async () => (await f.jobsOf(created.id)).find((j) => j.metadata?.labels?.['fanout.dev/offset'] === '2'), {
      what: 'the second shard',
      timeoutMs: 90_000,
    });
    const firstShard = (await f.jobsOf(created.id)).find((j) => j.metadata?.labels?.['fanout.dev/offset'] === '0')!;
    await f.batchApi.deleteNamespacedJob({ name: second.metadata!.name!, namespace: f.namespace, propagationPolicy: 'Background' });
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed']);
    expect(batch.status.phase).toBe('Succeeded');
    expect((await resultsOf(f.client, created.id)).map((r) => r.result)).toEqual(['a', 'b', 'c', 'd']);
    const jobs = await f.jobsOf(created.id);
    expect(jobs.find((j) => j.metadata?.labels?.['fanout.dev/offset'] === '2')?.metadata?.uid).not.toBe(second.metadata?.uid);
    expect(jobs.find((j) => j.metadata?.labels?.['fanout.dev/offset'] === '0')?.metadata?.uid).toBe(firstShard.metadata?.uid);
  });

  it('gives pods a headless Service and subdomain with networking.headless, and removes the Service after', async () => {
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      networking: { headless: true },
      template: { image: 'fanout:test', command: ['sh', '-c', 'sleep 2'] },
      items: [0, 1],
      parallelism: 2,
    });
    const service = await waitFor(
      async () => (await f.coreApi.listNamespacedService({ namespace: f.namespace, labelSelector: `fanout.dev/batch=${created.id}` })).items[0],
      { what: 'the headless Service' },
    );
    expect(service.spec?.clusterIP).toBe('None');
    expect(service.spec?.selector).toEqual({ 'fanout.dev/batch': created.id });
    const pods = await waitFor(async () => {
      const list = await f.podsOf(created.id);
      return list.length === 2 ? list : null;
    }, { what: 'two pods' });
    for (const pod of pods) expect(pod.spec?.subdomain).toBe(service.metadata?.name);

    expect((await f.waitForPhase(created.id, ['Succeeded', 'Failed'])).status.phase).toBe('Succeeded');
    await waitFor(
      async () => (await f.coreApi.listNamespacedService({ namespace: f.namespace, labelSelector: `fanout.dev/batch=${created.id}` })).items.length === 0,
      { what: 'the Service to be deleted' },
    );
  });

  it('leaves finished Jobs to ttlSecondsAfterFinished; the batch and its results stay', async () => {
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      ttlSecondsAfterFinished: 3,
      template: { image: 'fanout:test', command: ['fanout', 'exec', '--', 'echo', 'kept'] },
      items: ['x'],
    });
    // Read while it exists: the TTL controller may delete it soon after the batch succeeds.
    const job = await waitFor(async () => (await f.jobsOf(created.id))[0], { what: 'the Job' });
    expect(job.spec?.ttlSecondsAfterFinished).toBe(3);
    expect((await f.waitForPhase(created.id, ['Succeeded', 'Failed'])).status.phase).toBe('Succeeded');
    await waitFor(async () => (await f.jobsOf(created.id)).length === 0, { what: 'the TTL controller to delete the Job', timeoutMs: 60_000 });
    const batch = await f.client.getBatch(created.id);
    expect(batch.status.phase).toBe('Succeeded');
    expect((await resultsOf(f.client, created.id)).map((r) => r.result)).toEqual(['kept']);
  });
});
