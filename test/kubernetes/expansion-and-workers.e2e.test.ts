import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxOverlap } from '../helpers/cluster.js';
import { waitFor } from './helpers.js';
import { resultsOf, startFanoutOnKubernetes, type FanoutOnKubernetes } from './fanout.js';

/**
 * The reference's other two patterns against the real control plane: the expansion (a Job per
 * item from a template, grouped by label) and the fine-parallel work queue (a Job of workers
 * that exit once the queue is empty).
 */

let f: FanoutOnKubernetes;

beforeAll(async () => {
  // Two creations a second: the pacing is visible in the Jobs' creation times.
  f = await startFanoutOnKubernetes('expand', { FANOUT_KUBERNETES_CREATE_QPS: '2' });
});

afterAll(async () => {
  await f?.stop();
});

describe('job-per-item runtime (the expansion pattern)', () => {
  it('creates one Job per item from the template, labelled for group operations, at a bounded rate', async () => {
    const fruits = ['apple', 'banana', 'cherry', 'date'];
    const created = await f.client.createBatch({
      name: 'process-item',
      labels: { jobgroup: 'jobexample' },
      runtime: 'job-per-item',
      template: { image: 'busybox:1.36', command: ['fanout', 'exec', '--', 'sh', '-c', 'echo Processing item {{ name }}'] },
      items: fruits.map((name) => ({ name })),
      parallelism: 4,
    });
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed']);
    expect(batch.status.phase).toBe('Succeeded');
    expect((await resultsOf(f.client, created.id)).map((r) => r.result)).toEqual(fruits.map((n) => `Processing item ${n}`));

    const jobs = (await f.batchApi.listNamespacedJob({ namespace: f.namespace, labelSelector: 'jobgroup=jobexample' })).items;
    expect(jobs).toHaveLength(4);
    const byIndex = new Map(jobs.map((j) => [Number(j.metadata?.labels?.['fanout.dev/index']), j]));
    for (const [i, name] of fruits.entries()) {
      const job = byIndex.get(i)!;
      expect(job.metadata?.labels).toMatchObject({ jobgroup: 'jobexample', 'fanout.dev/batch': created.id });
      // The template was rendered for this item before the Job was created.
      expect(job.spec?.template.spec?.containers[0].command).toEqual(['fanout', 'exec', '--', 'sh', '-c', `echo Processing item ${name}`]);
    }
    const created_ = jobs.map((j) => new Date(j.metadata!.creationTimestamp!).getTime()).sort((a, b) => a - b);
    // 4 creations at 2/s with a burst of 2: the last one at least ~1 s after the first.
    expect(created_[3] - created_[0]).toBeGreaterThanOrEqual(900);
  });

  it('never has more than parallelism item Jobs running', async () => {
    const created = await f.client.createBatch({
      runtime: 'job-per-item',
      template: { image: 'busybox:1.36', command: ['sh', '-c', 'sleep 1'] },
      items: Array.from({ length: 6 }, (_, i) => ({ i })),
      parallelism: 2,
    });
    expect((await f.waitForPhase(created.id, ['Succeeded', 'Failed'])).status.phase).toBe('Succeeded');
    const runs = (await f.items(created.id)).map((item) => {
      const a = item.attempts[0];
      return [Date.parse(a.startedAt), Date.parse(a.finishedAt)] as [number, number];
    });
    expect(runs).toHaveLength(6);
    expect(maxOverlap(runs)).toBeLessThanOrEqual(2);
    expect(maxOverlap(runs)).toBeGreaterThanOrEqual(1);
  });

  it('creates an item Job again when it is deleted before it finished: nothing is lost', async () => {
    const created = await f.client.createBatch({
      runtime: 'job-per-item',
      template: { image: 'busybox:1.36', command: ['fanout', 'exec', '--', 'sh', '-c', 'sleep 2; echo done {{ n }}'] },
      items: [{ n: 0 }, { n: 1 }],
      parallelism: 2,
    });
    const first = await waitFor(async () => (await f.jobsOf(created.id)).find((j) => j.metadata?.labels?.['fanout.dev/index'] === '1'), { what: 'the Job of item 1' });
    await f.batchApi.deleteNamespacedJob({ name: first.metadata!.name!, namespace: f.namespace, propagationPolicy: 'Background' });
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed']);
    expect(batch.status.phase).toBe('Succeeded');
    expect((await resultsOf(f.client, created.id)).map((r) => r.result)).toEqual(['done 0', 'done 1']);
    const again = (await f.jobsOf(created.id)).find((j) => j.metadata?.labels?.['fanout.dev/index'] === '1');
    expect(again?.metadata?.uid).not.toBe(first.metadata?.uid);
  });

  it('deletes a group of batches by label, and their Jobs with them', async () => {
    const ids: string[] = [];
    for (const n of [1, 2]) {
      const created = await f.client.createBatch({
        labels: { jobgroup: 'todelete', n: String(n) },
        runtime: 'job-per-item',
        template: { image: 'busybox:1.36', command: ['sh', '-c', 'sleep 300'] },
        items: [{ k: 1 }, { k: 2 }],
        parallelism: 2,
      });
      ids.push(created.id);
    }
    await waitFor(async () => (await f.batchApi.listNamespacedJob({ namespace: f.namespace, labelSelector: 'jobgroup=todelete' })).items.length === 4, {
      what: 'four Jobs',
    });
    const res = await f.client.json('DELETE', '/v1/batches?labelSelector=jobgroup%3Dtodelete');
    expect(res.status).toBe(200);
    expect(res.body.deleted).toBe(2);
    for (const id of ids) expect((await f.client.json('GET', `/v1/batches/${id}`)).status).toBe(404);
    await waitFor(
      async () =>
        (await f.batchApi.listNamespacedJob({ namespace: f.namespace, labelSelector: 'jobgroup=todelete' })).items.length === 0 &&
        (await f.coreApi.listNamespacedPod({ namespace: f.namespace, labelSelector: 'jobgroup=todelete' })).items.length === 0,
      { what: 'the Jobs and pods of the deleted batches to go' },
    );
  });
});

describe('queue runtime with Kubernetes workers (the fine-parallel pattern)', () => {
  it('starts a Job of workers that drain the batch queue and exit 0 once it is empty', async () => {
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta'];
    const created = await f.client.createBatch({
      runtime: 'queue',
      task: 'rev',
      workers: { kubernetes: { image: 'fanout-worker:test', parallelism: 2 } },
      items: words,
    });
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed'], 120_000);
    expect(batch.status.phase).toBe('Succeeded');
    expect((await resultsOf(f.client, created.id)).map((r) => r.result)).toEqual(words.map((w) => [...w].reverse().join('')));

    // The workers saw the batch done and exited 0: the Job completes on its own.
    const job = await waitFor(
      async () => (await f.jobsOf(created.id)).find((j) => j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True')),
      { what: 'the worker Job to complete', timeoutMs: 60_000 },
    );
    expect(job.status?.succeeded).toBeGreaterThanOrEqual(1);
    expect(job.status?.failed ?? 0).toBe(0);
    const jobs = await f.jobsOf(created.id);
    expect(jobs).toHaveLength(1);
    expect(jobs[0].spec?.completions ?? null).toBeNull();
    expect(jobs[0].spec?.parallelism).toBe(2);
    expect(jobs[0].spec?.template.spec?.containers[0].command).toEqual(['fanout', 'worker', '--batch', created.id, '--exit-when-empty']);
  });

  it('retries failed items with new workers after the first ones exited', async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    const items = ['a', 'b', 'c'].map((x) => `${x}-${tag}`);
    const created = await f.client.createBatch({
      runtime: 'queue',
      task: 'failfirst',
      workers: { kubernetes: { image: 'fanout-worker:test', parallelism: 2 } },
      retry: { backoffLimitPerItem: 0 },
      items,
    });
    const failed = await f.waitForPhase(created.id, ['Succeeded', 'Failed'], 120_000);
    expect(failed.status.phase).toBe('Failed');
    expect(failed.status.counts.failed).toBe(3);
    await waitFor(
      async () => (await f.jobsOf(created.id)).some((j) => j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True')),
      { what: 'the first worker Job to complete' },
    );

    expect((await f.client.json('POST', `/v1/batches/${created.id}/retry`)).status).toBe(200);
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed'], 120_000);
    expect(batch.status.phase).toBe('Succeeded');
    expect((await resultsOf(f.client, created.id)).map((r) => r.result)).toEqual(items.map((i) => `ok ${i}`));
    for (const item of await f.items(created.id)) expect(item.attempts.map((a: any) => a.outcome)).toEqual(['failed', 'succeeded']);
  });
});
