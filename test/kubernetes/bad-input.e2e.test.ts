import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../integration/support.js';
import { waitFor } from './helpers.js';
import { startFanoutOnKubernetes, type FanoutOnKubernetes } from './fanout.js';

/**
 * Bad input for the Kubernetes runtimes: refused at submission with a precise problem+json and
 * nothing created (no batch, no Job), and what the API server refuses later shown in the batch's
 * conditions with the server's own message.
 */

let f: FanoutOnKubernetes;

beforeAll(async () => {
  // A namespace the server may use but which does not exist: the dry run at submission finds it.
  f = await startFanoutOnKubernetes('badinput', { FANOUT_ALLOWED_NAMESPACES: 'ghost-namespace' });
});

afterAll(async () => {
  await f?.stop();
});

const base = { runtime: 'indexed-job', template: { image: 'busybox:1.36', command: ['true'] }, items: [1, 2] };

async function expectNothingCreated(): Promise<void> {
  expect((await f.client.json('GET', '/v1/batches')).body.items).toEqual([]);
  expect((await f.batchApi.listNamespacedJob({ namespace: f.namespace })).items).toEqual([]);
}

describe('bad input for the Kubernetes runtimes', () => {
  it.each([
    ['no image', { template: { command: ['true'] } }, '/template/image'],
    ['a bad resource quantity', { template: { image: 'busybox', resources: { limits: { memory: '1GB' } } } }, '/template/resources/limits/memory'],
    ['a label value Kubernetes rejects', { labels: { team: 'not ok!' } }, '/labels/team'],
    ['an onHttpStatus rule', { retry: { rules: [{ action: 'FailItem', onHttpStatus: { operator: 'In', values: [404] } }] } }, '/retry/rules/0/onHttpStatus'],
    ['a placeholder for a field an item lacks', { template: { image: 'busybox', command: ['echo', '{{ missing }}'] } }, '/items/0'],
  ])('refuses %s with 422 and a pointer, creating nothing', async (_what, change, pointer) => {
    const res = await f.client.request('POST', '/v1/batches', { ...base, ...change });
    await expectProblem(res, 422, pointer);
    await expectNothingCreated();
  });

  it('refuses a namespace the server may not use with 403', async () => {
    const res = await f.client.request('POST', '/v1/batches', { ...base, namespace: 'kube-system' });
    const body = await expectProblem(res, 403, '/namespace');
    expect(body.detail).toMatch(/kube-system/);
    await expectNothingCreated();
  });

  it('refuses an allowed namespace that does not exist, from the API server dry run', async () => {
    const res = await f.client.request('POST', '/v1/batches', { ...base, namespace: 'ghost-namespace' });
    const body = await expectProblem(res, 422);
    expect(body.detail).toMatch(/ghost-namespace/);
    await expectNothingCreated();
  });

  it('shows what Kubernetes refuses later in the batch conditions, with its message', async () => {
    // The image is rendered per item: the second item's has a trailing space. The Job is
    // accepted, but the job controller cannot create its pod; the batch says so and keeps
    // running (Kubernetes keeps retrying) until it is cancelled.
    const created = await f.client.createBatch({
      runtime: 'job-per-item',
      template: { image: '{{ image }}', command: ['true'] },
      items: [{ image: 'busybox:1.36' }, { image: 'busybox:1.36 ' }],
      parallelism: 1,
    });
    const batch = await waitFor(
      async () => {
        const b = await f.client.getBatch(created.id);
        return b.status.conditions.some((c: any) => c.type === 'PodCreationFailed' && c.status === 'True') ? b : null;
      },
      { what: 'the PodCreationFailed condition' },
    );
    expect(batch.status.phase).toBe('Running');
    expect(batch.status.counts).toMatchObject({ succeeded: 1, pending: 1 });
    const condition = batch.status.conditions.find((c: any) => c.type === 'PodCreationFailed');
    expect(condition.reason).toBe('FailedCreate');
    expect(condition.message).toMatch(/-i1: .*spec\.containers\[0\]\.image.*whitespace/);

    expect((await f.client.json('POST', `/v1/batches/${created.id}/cancel`)).status).toBe(200);
    await f.waitForPhase(created.id, ['Cancelled']);
    await waitFor(async () => (await f.jobsOf(created.id)).every((j) => j.metadata?.labels?.['fanout.dev/index'] === '0'), { what: 'the unfinished Job to be deleted' });
  });
});
