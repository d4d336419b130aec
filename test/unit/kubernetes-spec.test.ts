import { describe, expect, test } from 'vitest';
import { batchHeaderSchema, batchSpecSchema, runtimeProblems, type BatchHeader } from '../../src/domain/batch-spec.js';

/** The first issue zod reports for `spec`, as a path and message. */
function firstIssue(spec: unknown): { path: (string | number | symbol)[]; message: string } | undefined {
  const r = batchHeaderSchema.safeParse(spec);
  return r.success ? undefined : { path: r.error.issues[0].path as (string | number)[], message: r.error.issues[0].message };
}

const image = { image: 'busybox:1.36' };

describe('spec schema: the Kubernetes fields', () => {
  test.each<{ name: string; spec: Record<string, unknown> }>([
    { name: 'no template (queue)', spec: { task: 'rev' } },
    { name: 'a template of the old shape', spec: { task: 'rev', template: { image: 'busybox', command: ['sh', '-c', 'echo {{ url }}'], args: ['a'], env: { URL: '{{ url }}' } } } },
    { name: 'resources', spec: { template: { ...image, resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '1Gi', 'nvidia.com/gpu': '1' } } } } },
    { name: 'equal request and limit', spec: { template: { ...image, resources: { requests: { cpu: '1000m' }, limits: { cpu: '1' } } } } },
    { name: 'empty resources', spec: { template: { ...image, resources: {} } } },
    { name: 'serviceAccountName', spec: { template: { ...image, serviceAccountName: 'fanout-runner.team-a' } } },
    { name: 'nodeSelector', spec: { template: { ...image, nodeSelector: { 'kubernetes.io/arch': 'arm64', pool: 'batch' } } } },
    { name: 'tolerations', spec: { template: { ...image, tolerations: [{ key: 'gpu', operator: 'Equal', value: 'true', effect: 'NoSchedule' }, { operator: 'Exists' }, { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 }, { key: 'k', value: 'v' }] } } },
    { name: 'namespace', spec: { namespace: 'team-a' } },
    { name: 'networking', spec: { networking: { headless: true } } },
    { name: 'workers', spec: { workers: { kubernetes: { image: 'fanout:dev', parallelism: 5, resources: { requests: { cpu: '250m' } }, serviceAccountName: 'worker' } } } },
    { name: 'ttlSecondsAfterFinished 0', spec: { ttlSecondsAfterFinished: 0 } },
  ])('accepts $name', ({ spec }) => {
    expect(firstIssue(spec)).toBeUndefined();
  });

  test.each<{ name: string; spec: Record<string, unknown>; path: (string | number)[]; message?: RegExp }>([
    { name: 'unknown template field', spec: { template: { ...image, imagePullPolicy: 'Always' } }, path: ['template'], message: /imagePullPolicy/ },
    { name: 'a task name in the batch-queue namespace', spec: { runtime: 'queue', task: 'batch.b0001' }, path: ['task'], message: /reserved/ },
    { name: 'quantity with a unit Kubernetes lacks', spec: { template: { ...image, resources: { limits: { memory: '1GB' } } } }, path: ['template', 'resources', 'limits', 'memory'], message: /"1GB"/ },
    { name: 'negative quantity', spec: { template: { ...image, resources: { requests: { cpu: '-1' } } } }, path: ['template', 'resources', 'requests', 'cpu'], message: /"-1"/ },
    { name: 'not a quantity', spec: { template: { ...image, resources: { requests: { cpu: 'abc' } } } }, path: ['template', 'resources', 'requests', 'cpu'], message: /"abc"/ },
    { name: 'a number, not a string', spec: { template: { ...image, resources: { requests: { cpu: 1 } } } }, path: ['template', 'resources', 'requests', 'cpu'] },
    { name: 'bad resource name', spec: { template: { ...image, resources: { requests: { 'not ok': '1' } } } }, path: ['template', 'resources', 'requests', 'not ok'], message: /resource name/ },
    { name: 'request above limit', spec: { template: { ...image, resources: { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } } } }, path: ['template', 'resources', 'requests', 'memory'], message: /2Gi is more than limits.memory 1Gi/ },
    { name: 'unknown resources field', spec: { template: { ...image, resources: { claims: [] } } }, path: ['template', 'resources'] },
    { name: 'service account with capitals', spec: { template: { ...image, serviceAccountName: 'Runner' } }, path: ['template', 'serviceAccountName'], message: /DNS subdomain/ },
    { name: 'nodeSelector value not a label value', spec: { template: { ...image, nodeSelector: { pool: 'a b' } } }, path: ['template', 'nodeSelector', 'pool'] },
    { name: 'toleration operator', spec: { template: { ...image, tolerations: [{ key: 'k', operator: 'Gt' }] } }, path: ['template', 'tolerations', 0, 'operator'] },
    { name: 'toleration effect', spec: { template: { ...image, tolerations: [{ key: 'k', effect: 'Evict' }] } }, path: ['template', 'tolerations', 0, 'effect'] },
    { name: 'toleration unknown field', spec: { template: { ...image, tolerations: [{ key: 'k', operater: 'Exists' }] } }, path: ['template', 'tolerations', 0] },
    { name: 'toleration without key needs Exists', spec: { template: { ...image, tolerations: [{ value: 'v' }] } }, path: ['template', 'tolerations', 0, 'operator'], message: /Exists/ },
    { name: 'toleration Exists with a value', spec: { template: { ...image, tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] } }, path: ['template', 'tolerations', 0, 'value'] },
    { name: 'tolerationSeconds without NoExecute', spec: { template: { ...image, tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoSchedule', tolerationSeconds: 5 }] } }, path: ['template', 'tolerations', 0, 'tolerationSeconds'], message: /NoExecute/ },
    { name: 'namespace not a DNS label', spec: { namespace: 'Team_A' }, path: ['namespace'], message: /DNS label/ },
    { name: 'namespace too long', spec: { namespace: 'a'.repeat(64) }, path: ['namespace'] },
    { name: 'networking not strict', spec: { networking: { headless: true, ports: [] } }, path: ['networking'] },
    { name: 'networking.headless not a boolean', spec: { networking: { headless: 'yes' } }, path: ['networking', 'headless'] },
    { name: 'workers without kubernetes', spec: { workers: {} }, path: ['workers', 'kubernetes'] },
    { name: 'workers parallelism 0', spec: { workers: { kubernetes: { image: 'x', parallelism: 0 } } }, path: ['workers', 'kubernetes', 'parallelism'] },
    { name: 'workers parallelism too high', spec: { workers: { kubernetes: { image: 'x', parallelism: 10_001 } } }, path: ['workers', 'kubernetes', 'parallelism'] },
    { name: 'workers unknown field', spec: { workers: { kubernetes: { image: 'x', parallelism: 1, replicas: 2 } } }, path: ['workers', 'kubernetes'] },
    { name: 'workers without image', spec: { workers: { kubernetes: { parallelism: 1 } } }, path: ['workers', 'kubernetes', 'image'] },
    { name: 'negative ttl', spec: { ttlSecondsAfterFinished: -1 }, path: ['ttlSecondsAfterFinished'] },
    { name: 'fractional ttl', spec: { ttlSecondsAfterFinished: 1.5 }, path: ['ttlSecondsAfterFinished'] },
  ])('rejects $name at $path', ({ spec, path, message }) => {
    const issue = firstIssue(spec);
    expect(issue?.path).toEqual(path);
    if (message) expect(issue?.message).toMatch(message);
  });

  test('defaults are unchanged and the new fields stay absent when not sent', () => {
    const h = batchSpecSchema.parse({ task: 'rev', items: ['a'] });
    expect(h).toEqual({
      task: 'rev',
      items: ['a'],
      runtime: 'queue',
      parallelism: 100,
      retry: { backoffLimitPerItem: 3, backoffSeconds: 1, maxBackoffSeconds: 300, rules: [] },
    });
  });
});

const header = (spec: Record<string, unknown>): BatchHeader => batchHeaderSchema.parse(spec);
const k8s = { runtime: 'indexed-job', template: { image: 'busybox' } };
const rules = (...r: unknown[]) => ({ retry: { rules: r } });

describe('runtimeProblems', () => {
  test.each<{ name: string; spec: Record<string, unknown> }>([
    { name: 'queue with a task', spec: { task: 'rev' } },
    { name: 'queue with Kubernetes workers', spec: { task: 'rev', workers: { kubernetes: { image: 'fanout', parallelism: 3 } } } },
    { name: 'queue with HTTP and Timeout rules', spec: { task: 'rev', ...rules({ action: 'FailItem', onHttpStatus: { operator: 'In', values: [404] } }, { action: 'Ignore', onConditions: [{ type: 'Timeout' }] }) } },
    { name: 'indexed-job with an image', spec: k8s },
    { name: 'job-per-item with a per-item image', spec: { runtime: 'job-per-item', template: { image: 'registry/{{ name }}:1' } } },
    { name: 'indexed-job with networking', spec: { ...k8s, networking: { headless: true } } },
    { name: 'the design example rules on indexed-job', spec: { ...k8s, ...rules({ action: 'FailBatch', onExitCodes: { operator: 'In', values: [42] } }, { action: 'Ignore', onConditions: [{ type: 'Disruption' }] }) } },
    { name: 'NotIn with 0', spec: { ...k8s, ...rules({ action: 'FailItem', onExitCodes: { operator: 'NotIn', values: [0, 1] } }) } },
    { name: 'indexed-job maxFailedItems at the limit', spec: { ...k8s, retry: { maxFailedItems: 100_000 } } },
    { name: 'job-per-item maxFailedItems above the indexed limit', spec: { runtime: 'job-per-item', template: { image: 'x' }, retry: { maxFailedItems: 200_000 } } },
    { name: 'queue with a fanout.dev label (no Jobs)', spec: { task: 'rev', labels: { 'fanout.dev/x': 'y' } } },
  ])('none for $name', ({ spec }) => {
    expect(runtimeProblems(header(spec))).toEqual([]);
  });

  test.each<{ name: string; spec: Record<string, unknown>; want: Array<{ path: (string | number)[]; message: RegExp }> }>([
    { name: 'indexed-job without a template', spec: { runtime: 'indexed-job' }, want: [{ path: ['template', 'image'], message: /template\.image/ }] },
    { name: 'job-per-item without an image', spec: { runtime: 'job-per-item', template: { command: ['x'] } }, want: [{ path: ['template', 'image'], message: /template\.image/ }] },
    { name: 'indexed-job with a task', spec: { ...k8s, task: 'rev' }, want: [{ path: ['task'], message: /drop task/ }] },
    { name: 'queue without a task', spec: {}, want: [{ path: ['task'], message: /names the task/ }] },
    { name: 'workers on indexed-job', spec: { ...k8s, workers: { kubernetes: { image: 'f', parallelism: 1 } } }, want: [{ path: ['workers'], message: /queue/ }] },
    { name: 'networking on queue', spec: { task: 'rev', networking: { headless: true } }, want: [{ path: ['networking'], message: /indexed-job/ }] },
    { name: 'networking on job-per-item', spec: { runtime: 'job-per-item', template: { image: 'x' }, networking: { headless: false } }, want: [{ path: ['networking'], message: /indexed-job/ }] },
    { name: 'onHttpStatus on Kubernetes', spec: { ...k8s, ...rules({ action: 'Count', onExitCodes: { operator: 'In', values: [1] } }, { action: 'FailItem', onHttpStatus: { operator: 'In', values: [404] } }) }, want: [{ path: ['retry', 'rules', 1, 'onHttpStatus'], message: /Kubernetes cannot match onHttpStatus/ }] },
    { name: 'Timeout on Kubernetes', spec: { runtime: 'job-per-item', template: { image: 'x' }, ...rules({ action: 'Ignore', onConditions: [{ type: 'Disruption' }, { type: 'Timeout' }] }) }, want: [{ path: ['retry', 'rules', 0, 'onConditions', 1, 'type'], message: /Kubernetes cannot match the Timeout/ }] },
    { name: 'exit code 0 with In', spec: { ...k8s, ...rules({ action: 'FailItem', onExitCodes: { operator: 'In', values: [3, 0] } }) }, want: [{ path: ['retry', 'rules', 0, 'onExitCodes', 'values', 1], message: /exit code 0/ }] },
    { name: 'maxFailedItems above 100000 on indexed-job', spec: { ...k8s, retry: { maxFailedItems: 100_001 } }, want: [{ path: ['retry', 'maxFailedItems'], message: /100000.*100001/ }] },
    { name: 'placeholder in an indexed-job image', spec: { runtime: 'indexed-job', template: { image: 'img:{{ tag }}' } }, want: [{ path: ['template', 'image'], message: /same image/ }] },
    { name: 'reserved env name', spec: { ...k8s, template: { image: 'x', env: { FANOUT_TOKEN: 'mine', OK: '1', JOB_COMPLETION_INDEX: '3' } } }, want: [{ path: ['template', 'env', 'FANOUT_TOKEN'], message: /FANOUT_TOKEN/ }, { path: ['template', 'env', 'JOB_COMPLETION_INDEX'], message: /JOB_COMPLETION_INDEX/ }] },
    { name: 'reserved labels on Kubernetes objects', spec: { ...k8s, labels: { 'fanout.dev/batch': 'x', 'batch.kubernetes.io/job-name': 'y', 'job-name': 'z', ok: 'v' } }, want: [{ path: ['labels', 'fanout.dev/batch'], message: /reserved/ }, { path: ['labels', 'batch.kubernetes.io/job-name'], message: /reserved/ }, { path: ['labels', 'job-name'], message: /reserved/ }] },
    {
      name: 'several problems at once, in order',
      spec: { runtime: 'job-per-item', task: 'rev', networking: { headless: true }, ...rules({ action: 'FailItem', onHttpStatus: { operator: 'NotIn', values: [200] } }) },
      want: [
        { path: ['template', 'image'], message: /template\.image/ },
        { path: ['task'], message: /task/ },
        { path: ['networking'], message: /indexed-job/ },
        { path: ['retry', 'rules', 0, 'onHttpStatus'], message: /onHttpStatus/ },
      ],
    },
  ])('$name', ({ spec, want }) => {
    const got = runtimeProblems(header(spec));
    expect(got.map((p) => p.path)).toEqual(want.map((w) => w.path));
    got.forEach((p, i) => expect(p.message).toMatch(want[i].message));
  });
});
