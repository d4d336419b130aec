import path from 'node:path';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartApiServer, waitFor } from './helpers.js';
import { isAlive } from '../helpers/processes.js';
import { resultsOf, startFanoutOnKubernetes, type FanoutOnKubernetes } from './fanout.js';

/**
 * The indexed-job runtime against the real kube-apiserver and job controller: the reference's
 * Indexed Job and pod-failure-policy examples, suspend/resume, cancel and an API-server restart,
 * all driven over Fanout's HTTP API.
 */

let f: FanoutOnKubernetes;

beforeAll(async () => {
  // debug: the API-server restart test reads how the watches resumed
  f = await startFanoutOnKubernetes('indexed', { LOG_LEVEL: 'debug' });
});

afterAll(async () => {
  await f?.stop();
});

/** The pod command `sh -c SCRIPT` through `fanout exec`, which also fills {{ }} from the item. */
const execSh = (script: string) => ({ image: 'fanout:test', command: ['fanout', 'exec', '--', 'sh', '-c', script] });

describe('indexed-job runtime', () => {
  it('runs the reference Indexed Job example: rev over five words, three at a time, one Job', async () => {
    const words = ['foo', 'bar', 'baz', 'qux', 'xyz'];
    const created = await f.client.createBatch({
      name: 'indexed-rev',
      labels: { example: 'indexed' },
      runtime: 'indexed-job',
      template: { image: 'fanout:test', command: ['fanout', 'exec', '--', 'rev'] },
      items: words,
      parallelism: 3,
    });
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed']);
    expect(batch.status.phase).toBe('Succeeded');
    expect(batch.status.completedIndexes).toBe('0-4');
    expect(batch.status.counts).toMatchObject({ total: 5, succeeded: 5, failed: 0 });

    const results = await resultsOf(f.client, created.id);
    expect(results.map((r) => r.result)).toEqual(['oof', 'rab', 'zab', 'xuq', 'zyx']);

    const jobs = await f.jobsOf(created.id);
    expect(jobs).toHaveLength(1);
    const job = jobs[0];
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 5, parallelism: 3, backoffLimitPerIndex: 3 });
    expect(job.spec?.template.spec?.restartPolicy).toBe('Never');
    expect(job.metadata?.labels).toMatchObject({ 'fanout.dev/batch': created.id, example: 'indexed' });
    expect(job.status?.completedIndexes).toBe('0-4');
    const pods = await f.podsOf(created.id);
    expect(pods.length).toBeGreaterThanOrEqual(5);
    for (const pod of pods) expect(pod.metadata?.labels).toMatchObject({ 'fanout.dev/batch': created.id, example: 'indexed' });
    // The worker token reaches pods through a Secret, never in the Job itself.
    expect(JSON.stringify(job)).not.toMatch(/fbt_/);

    const items = await f.items(created.id);
    for (const item of items) {
      expect(item.attempts).toHaveLength(1);
      expect(item.attempts[0]).toMatchObject({ attempt: 1, outcome: 'succeeded', exitCode: 0 });
    }
  });

  it('fails the batch with the pod failure policy reason when an item exits 42 (FailBatch → FailJob)', async () => {
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      template: execSh('if [ "$(cat)" = "bad" ]; then exit 42; fi; sleep 1; echo ok'),
      items: ['ok', 'bad', 'ok'],
      parallelism: 3,
      retry: { backoffLimitPerItem: 3, rules: [{ action: 'FailBatch', onExitCodes: { operator: 'In', values: [42] } }] },
    });
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed']);
    expect(batch.status.phase).toBe('Failed');
    const failed = batch.status.conditions.find((c: any) => c.type === 'Failed');
    expect(failed).toMatchObject({ status: 'True', reason: 'PodFailurePolicy' });
    expect(failed.message).toMatch(/exit code 42/);
    const item = (await f.items(created.id)).find((i) => i.index === 1);
    expect(item.attempts[0]).toMatchObject({ outcome: 'failed', exitCode: 42, decision: 'FailBatchRule' });
    // The Job failed by its own policy: it stays (for its pods' logs) until its TTL, pods ended.
    const [job] = await f.jobsOf(created.id);
    expect(job.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'PodFailurePolicy' });
    await waitFor(async () => (await f.podsOf(created.id)).every((p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed'), {
      what: 'every pod to have ended',
    });
  });

  it('retries an evicted pod without counting it against the backoff (Ignore on Disruption)', async () => {
    const marker = path.join(f.scratch, 'evict-started');
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      // The first pod runs until it is evicted; the second one finds the marker and succeeds.
      template: execSh(`if [ -e ${marker} ]; then echo second; else touch ${marker}; exec sleep 120; fi`),
      items: ['only'],
      parallelism: 1,
      retry: { backoffLimitPerItem: 0, rules: [{ action: 'Ignore', onConditions: [{ type: 'Disruption' }] }] },
    });
    const pod = await waitFor(
      async () => (await f.podsOf(created.id)).find((p) => p.status?.phase === 'Running' && fs.existsSync(marker)),
      { what: 'the first pod to run' },
    );
    await f.coreApi.createNamespacedPodEviction({
      name: pod.metadata!.name!,
      namespace: f.namespace,
      body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.metadata!.name!, namespace: f.namespace } },
    });
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed']);
    // backoffLimitPerItem 0: a counted failure would have failed the item.
    expect(batch.status.phase).toBe('Succeeded');
    const [item] = await f.items(created.id);
    expect(item.result).toBe('second');
    expect(item.attempts.map((a: any) => [a.attempt, a.outcome, a.condition])).toEqual([
      [1, 'failed', 'Disruption'],
      [2, 'succeeded', null],
    ]);
    expect(item.attempts[0].decision).toBe('IgnoredByRule');
    const [job] = await f.jobsOf(created.id);
    expect(job.status?.failedIndexes ?? '').toBe('');
  });

  it('fails single indexes with FailIndex and backoffLimitPerIndex; failedIndexes equal the Job’s', async () => {
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      // "fail3": FailItem at once; "fail1": counted, retried twice, then the index fails.
      template: execSh('case "$(cat)" in fail3) exit 3;; fail1) exit 1;; *) echo ok;; esac'),
      items: ['ok', 'fail3', 'ok', 'fail1', 'ok'],
      parallelism: 2,
      retry: { backoffLimitPerItem: 2, backoffSeconds: 0, rules: [{ action: 'FailItem', onExitCodes: { operator: 'In', values: [3] } }] },
    });
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed'], 120_000);
    expect(batch.status.phase).toBe('Failed');
    const [job] = await f.jobsOf(created.id);
    expect(job.status?.failedIndexes).toBe('1,3');
    expect(batch.status.failedIndexes).toBe(job.status?.failedIndexes);
    expect(batch.status.completedIndexes).toBe(job.status?.completedIndexes);
    expect(batch.status.completedIndexes).toBe('0,2,4');
    const items = await f.items(created.id);
    expect(items[1]).toMatchObject({ status: 'failed', reason: 'FailItemRule' });
    expect(items[1].attempts).toHaveLength(1);
    expect(items[3]).toMatchObject({ status: 'failed', reason: 'BackoffLimitExceeded' });
    expect(items[3].attempts.map((a: any) => a.exitCode)).toEqual([1, 1, 1]);
  });

  it('suspends and resumes: the Job is suspended, nothing new starts, then it completes', async () => {
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      template: execSh('sleep 1; echo done'),
      items: Array.from({ length: 4 }, (_, i) => i),
      parallelism: 1,
    });
    const suspended = await f.client.json('POST', `/v1/batches/${created.id}/suspend`);
    expect(suspended.status).toBe(200);
    await f.waitForPhase(created.id, ['Suspended']);
    const job = await waitFor(async () => (await f.jobsOf(created.id)).find((j) => j.spec?.suspend === true), { what: 'the Job to be suspended' });
    expect(job.spec?.suspend).toBe(true);
    await waitFor(async () => (await f.podsOf(created.id)).every((p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' || p.metadata?.deletionTimestamp), {
      what: 'no pod to run while suspended',
    });
    const before = (await f.client.getBatch(created.id)).status.counts.succeeded;
    expect(before).toBeLessThan(4);

    expect((await f.client.json('POST', `/v1/batches/${created.id}/resume`)).status).toBe(200);
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed']);
    expect(batch.status.phase).toBe('Succeeded');
    expect(batch.status.counts.succeeded).toBe(4);
    expect((await f.jobsOf(created.id))[0].spec?.suspend).toBe(false);
  });

  it('cancels: the Job and its pods are deleted and the running processes stop', async () => {
    const started = path.join(f.scratch, 'cancel-pids');
    fs.mkdirSync(started);
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      template: execSh(`echo $$ > ${started}/$JOB_COMPLETION_INDEX; exec sleep 300`),
      items: ['a', 'b'],
      parallelism: 2,
    });
    await waitFor(() => fs.readdirSync(started).length === 2, { what: 'both pods to start' });
    const pids = fs.readdirSync(started).map((n) => Number(fs.readFileSync(path.join(started, n), 'utf8')));
    expect((await f.client.json('POST', `/v1/batches/${created.id}/cancel`)).status).toBe(200);
    const batch = await f.waitForPhase(created.id, ['Cancelled']);
    expect(batch.status.counts.cancelled).toBe(2);
    await waitFor(async () => (await f.jobsOf(created.id)).length === 0 && (await f.podsOf(created.id)).length === 0, { what: 'Job and pods to be deleted' });
    await waitFor(() => pids.every((pid) => !isAlive(pid)), { what: 'the pod processes to stop' });
  });

  it('loses nothing when kube-apiserver restarts mid-batch', async () => {
    const created = await f.client.createBatch({
      runtime: 'indexed-job',
      template: execSh('sleep 2; echo "$(cat)-done"'),
      items: Array.from({ length: 6 }, (_, i) => `w${i}`),
      parallelism: 2,
    });
    await waitFor(async () => (await f.client.getBatch(created.id)).status.counts.running > 0, { what: 'items to run' });
    // A write the dispatcher's watches do not select moves the store past their last resource
    // version, so the restarted API server (its watch cache starts at the current version)
    // answers their resumed watches 410 Gone, and they must list again.
    await f.coreApi.createNamespacedConfigMap({ namespace: f.namespace, body: { metadata: { name: 'bump' }, data: { a: 'b' } } });
    const relists = () => (f.output().match(new RegExp(`"what":"jobs in ${f.namespace}","relist":true`, 'g')) ?? []).length;
    const relistsBefore = relists();
    await restartApiServer();
    const batch = await f.waitForPhase(created.id, ['Succeeded', 'Failed'], 120_000);
    expect(batch.status.phase).toBe('Succeeded');
    const results = await resultsOf(f.client, created.id);
    expect(results.map((r) => r.result)).toEqual(Array.from({ length: 6 }, (_, i) => `w${i}-done`));
    for (const item of await f.items(created.id)) {
      expect(item.attempts.filter((a: any) => a.outcome === 'succeeded')).toHaveLength(1);
    }
    expect(relists()).toBeGreaterThan(relistsBefore);
  });
});
