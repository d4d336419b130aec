import { describe, expect, test } from 'vitest';
import { batchHeaderSchema, isDnsLabel, type BatchHeader } from '../../src/domain/batch-spec.js';
import {
  BATCH_LABEL, CONTAINER, ITEM_LABEL, OFFSET_LABEL, ROLE_LABEL, SHARD_SIZE, fanoutEnv, headlessService, indexedJob, itemJob, itemJobName, jobName,
  namespaceOf, podFailurePolicyOf, secretName, serviceName, shardsOf, tokenSecret, workerJob, workerJobName, type RuntimeSettings,
} from '../../src/runtimes/kubernetes/manifests.js';
import { newBatchId } from '../../src/store/batch-create.js';

const settings: RuntimeSettings = { namespace: 'fanout', apiUrl: 'http://fanout-api.fanout.svc:8080', redisUrl: 'redis://redis.fanout.svc:6379', ttlSecondsAfterFinished: 3600 };
const BATCH = 'b0123456789abcdefghi';
const header = (spec: Record<string, unknown>): BatchHeader => batchHeaderSchema.parse(spec);
const k8sSpec = { runtime: 'indexed-job', template: { image: 'busybox' } };

/** The design's example spec, as an indexed-job. */
const example = header({
  name: 'fruit',
  labels: { jobgroup: 'jobexample' },
  runtime: 'indexed-job',
  template: { image: 'busybox:1.36', command: ['sh', '-c', 'echo Processing {{ url }}'] },
  parallelism: 3,
  retry: {
    backoffLimitPerItem: 2,
    maxFailedItems: 10,
    rules: [
      { action: 'FailBatch', onExitCodes: { operator: 'In', values: [42] } },
      { action: 'Ignore', onConditions: [{ type: 'Disruption' }] },
    ],
  },
  activeDeadlineSeconds: 3600,
  itemTimeoutSeconds: 60,
});

describe('podFailurePolicyOf', () => {
  test.each<{ name: string; rules: unknown[]; want: unknown }>([
    { name: 'no rules', rules: [], want: undefined },
    {
      name: 'the reference example: FailJob on exit code 42, Ignore disruptions',
      rules: example.retry.rules,
      want: {
        rules: [
          { action: 'FailJob', onExitCodes: { containerName: 'main', operator: 'In', values: [42] } },
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        ],
      },
    },
    {
      name: 'the per-index example: FailIndex on exit code 42, Ignore disruptions',
      rules: [{ action: 'FailItem', onExitCodes: { operator: 'In', values: [42] } }, { action: 'Ignore', onConditions: [{ type: 'Disruption' }] }],
      want: { rules: [{ action: 'FailIndex', onExitCodes: { containerName: 'main', operator: 'In', values: [42] } }, { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }] },
    },
    {
      name: 'Count with NotIn, values sorted and de-duplicated',
      rules: [{ action: 'Count', onExitCodes: { operator: 'NotIn', values: [7, 0, 3, 7] } }],
      want: { rules: [{ action: 'Count', onExitCodes: { containerName: 'main', operator: 'NotIn', values: [0, 3, 7] } }] },
    },
    { name: 'exit code 0 dropped from In', rules: [{ action: 'FailItem', onExitCodes: { operator: 'In', values: [0, 2] } }], want: { rules: [{ action: 'FailIndex', onExitCodes: { containerName: 'main', operator: 'In', values: [2] } }] } },
    { name: 'a rule left empty is dropped', rules: [{ action: 'FailItem', onExitCodes: { operator: 'In', values: [0] } }], want: undefined },
    {
      name: 'what Kubernetes cannot match is dropped, order kept',
      rules: [
        { action: 'FailItem', onHttpStatus: { operator: 'In', values: [404] } },
        { action: 'Ignore', onConditions: [{ type: 'Timeout' }] },
        { action: 'FailBatch', onConditions: [{ type: 'Timeout' }, { type: 'Disruption' }] },
        { action: 'Count', onExitCodes: { operator: 'In', values: [1] } },
      ],
      want: { rules: [{ action: 'FailJob', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }, { action: 'Count', onExitCodes: { containerName: 'main', operator: 'In', values: [1] } }] },
    },
  ])('$name', ({ rules, want }) => {
    expect(podFailurePolicyOf(header({ runtime: 'indexed-job', template: { image: 'x' }, retry: { rules } }).retry.rules)).toEqual(want);
  });
});

describe('shardsOf', () => {
  test.each<{ total: number; size?: number; want: Array<{ shard: number; offset: number; count: number }> }>([
    { total: 0, want: [] },
    { total: 1, want: [{ shard: 0, offset: 0, count: 1 }] },
    { total: 100_000, want: [{ shard: 0, offset: 0, count: 100_000 }] },
    { total: 100_001, want: [{ shard: 0, offset: 0, count: 100_000 }, { shard: 1, offset: 100_000, count: 1 }] },
    { total: 250_001, want: [{ shard: 0, offset: 0, count: 100_000 }, { shard: 1, offset: 100_000, count: 100_000 }, { shard: 2, offset: 200_000, count: 50_001 }] },
    { total: 7, size: 3, want: [{ shard: 0, offset: 0, count: 3 }, { shard: 1, offset: 3, count: 3 }, { shard: 2, offset: 6, count: 1 }] },
  ])('$total items in shards of ${size}', ({ total, size, want }) => {
    const shards = shardsOf(total, size);
    expect(shards).toEqual(want);
    expect(shards.reduce((n, s) => n + s.count, 0)).toBe(total);
  });

  test.each([[-1, SHARD_SIZE], [1.5, SHARD_SIZE], [10, 0], [10, 2.5]])('rejects total %d, size %d', (total, size) => {
    expect(() => shardsOf(total, size)).toThrow(RangeError);
  });
});

describe('names', () => {
  const id = newBatchId();
  test.each<{ name: string; got: string; want: string }>([
    { name: 'jobName shard 0', got: jobName(BATCH, 0), want: `fanout-${BATCH}-0` },
    { name: 'jobName shard 2', got: jobName(BATCH, 2), want: `fanout-${BATCH}-2` },
    { name: 'itemJobName', got: itemJobName(BATCH, 17), want: `fanout-${BATCH}-i17` },
    { name: 'workerJobName', got: workerJobName(BATCH), want: `fanout-${BATCH}-workers` },
    { name: 'secretName', got: secretName(BATCH), want: `fanout-${BATCH}` },
    { name: 'serviceName', got: serviceName(BATCH), want: `fanout-${BATCH}` },
  ])('$name', ({ got, want }) => expect(got).toBe(want));

  test('every name of a real batch id is a DNS label, pod hostnames included', () => {
    const names = [jobName(id, 99_999) + '-99999', itemJobName(id, 999_999_999) + '-0', workerJobName(id), secretName(id), serviceName(id)];
    for (const n of names) expect(isDnsLabel(n), n).toBe(true);
    // A Service name is a DNS-1035 label: it starts with a letter.
    expect(serviceName(id)).toMatch(/^[a-z]/);
  });
});

describe('fanoutEnv and tokenSecret', () => {
  test('env points at the API, the batch, the offset and the token Secret', () => {
    expect(fanoutEnv(BATCH, 200_000, settings)).toEqual([
      { name: 'FANOUT_API_URL', value: 'http://fanout-api.fanout.svc:8080' },
      { name: 'FANOUT_BATCH_ID', value: BATCH },
      { name: 'FANOUT_INDEX_OFFSET', value: '200000' },
      { name: 'FANOUT_TOKEN', valueFrom: { secretKeyRef: { name: `fanout-${BATCH}`, key: 'token' } } },
    ]);
  });

  test('the Secret holds the token as stringData, labelled with the batch', () => {
    expect(tokenSecret(BATCH, 'tok-123', { jobgroup: 'jobexample' }, { ...settings, namespace: 'team-a' })).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `fanout-${BATCH}`, namespace: 'team-a', labels: { jobgroup: 'jobexample', [BATCH_LABEL]: BATCH } },
      type: 'Opaque',
      stringData: { token: 'tok-123' },
    });
  });

  test('namespaceOf: the batch namespace, else the server one', () => {
    expect(namespaceOf({}, settings)).toBe('fanout');
    expect(namespaceOf({ namespace: 'team-a' }, settings)).toBe('team-a');
  });
});

describe('indexedJob', () => {
  test('the design example, shard 0 of one: every field', () => {
    const job = indexedJob({ batchId: BATCH, header: example, shard: { shard: 0, offset: 0, count: 5 }, suspend: false, maxFailedIndexes: 10, settings });
    const labels = { jobgroup: 'jobexample', [BATCH_LABEL]: BATCH, [ROLE_LABEL]: 'indexed', [OFFSET_LABEL]: '0' };
    expect(job).toEqual({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: `fanout-${BATCH}-0`, namespace: 'fanout', labels },
      spec: {
        completionMode: 'Indexed',
        completions: 5,
        parallelism: 3,
        backoffLimitPerIndex: 2,
        maxFailedIndexes: 5,
        podFailurePolicy: {
          rules: [
            { action: 'FailJob', onExitCodes: { containerName: CONTAINER, operator: 'In', values: [42] } },
            { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
          ],
        },
        podReplacementPolicy: 'Failed',
        activeDeadlineSeconds: 3600,
        ttlSecondsAfterFinished: 3600,
        suspend: false,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: 'Never',
            activeDeadlineSeconds: 60,
            containers: [
              {
                name: 'main',
                image: 'busybox:1.36',
                // Not rendered: `fanout exec` fills placeholders inside the pod.
                command: ['sh', '-c', 'echo Processing {{ url }}'],
                env: fanoutEnv(BATCH, 0, settings),
                terminationMessagePolicy: 'FallbackToLogsOnError',
              },
            ],
          },
        },
      },
    });
  });

  test('the third shard of 250,001 items', () => {
    const shard = shardsOf(250_001)[2];
    const job = indexedJob({ batchId: BATCH, header: header({ runtime: 'indexed-job', template: { image: 'x' }, parallelism: 1_000_000 }), shard, suspend: true, settings });
    expect(job.metadata?.name).toBe(`fanout-${BATCH}-2`);
    expect(job.metadata?.labels?.[OFFSET_LABEL]).toBe('200000');
    expect(job.spec?.completions).toBe(50_001);
    expect(job.spec?.parallelism).toBe(50_001);
    expect(job.spec?.suspend).toBe(true);
    expect(job.spec?.backoffLimitPerIndex).toBe(3);
    expect(job.spec).not.toHaveProperty('maxFailedIndexes');
    expect(job.spec).not.toHaveProperty('podFailurePolicy');
    expect(job.spec).not.toHaveProperty('activeDeadlineSeconds');
    expect(job.spec?.template.spec).not.toHaveProperty('activeDeadlineSeconds');
    expect(job.spec?.template.spec?.containers[0].env).toContainEqual({ name: 'FANOUT_INDEX_OFFSET', value: '200000' });
  });

  test('the pod template carries the template fields, literal env before ours', () => {
    const h = header({
      runtime: 'indexed-job',
      namespace: 'team-a',
      ttlSecondsAfterFinished: 0,
      networking: { headless: true },
      template: {
        image: 'python:3',
        command: ['python3'],
        args: ['-c', 'print("{{ item }}")'],
        env: { MODE: 'fast', URL: '{{ url }}' },
        resources: { requests: { cpu: '100m' }, limits: { memory: '1Gi' } },
        serviceAccountName: 'runner',
        nodeSelector: { pool: 'batch' },
        tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }],
      },
    });
    const job = indexedJob({ batchId: BATCH, header: h, shard: { shard: 0, offset: 0, count: 4 }, suspend: false, settings });
    expect(job.metadata?.namespace).toBe('team-a');
    expect(job.spec?.ttlSecondsAfterFinished).toBe(0);
    const pod = job.spec!.template.spec!;
    expect(pod.subdomain).toBe(serviceName(BATCH));
    expect(pod.serviceAccountName).toBe('runner');
    expect(pod.nodeSelector).toEqual({ pool: 'batch' });
    expect(pod.tolerations).toEqual([{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    const c = pod.containers[0];
    expect(c.args).toEqual(['-c', 'print("{{ item }}")']);
    expect(c.resources).toEqual({ requests: { cpu: '100m' }, limits: { memory: '1Gi' } });
    expect(c.env).toEqual([{ name: 'MODE', value: 'fast' }, { name: 'URL', value: '{{ url }}' }, ...fanoutEnv(BATCH, 0, settings)]);
  });

  test('no subdomain without networking.headless', () => {
    const off = indexedJob({ batchId: BATCH, header: header({ ...k8sSpec, networking: { headless: false } }), shard: { shard: 0, offset: 0, count: 1 }, suspend: false, settings });
    expect(off.spec?.template.spec).not.toHaveProperty('subdomain');
  });

  test('reserved batch labels are dropped and ours win', () => {
    const h = header({ ...k8sSpec, labels: { team: 'a', 'fanout.dev/batch': 'evil', 'fanout.dev/role': 'worker', 'batch.kubernetes.io/job-name': 'x', 'controller-uid': 'u' } });
    const job = indexedJob({ batchId: BATCH, header: h, shard: { shard: 0, offset: 0, count: 1 }, suspend: false, settings });
    expect(job.metadata?.labels).toEqual({ team: 'a', [BATCH_LABEL]: BATCH, [ROLE_LABEL]: 'indexed', [OFFSET_LABEL]: '0' });
    expect(job.spec?.template.metadata?.labels).toEqual(job.metadata?.labels);
  });

  test.each<{ count: number; given: number; want: number }>([
    { count: 100, given: 0, want: 0 },
    { count: 100, given: 10, want: 10 },
    { count: 5, given: 10, want: 5 },
  ])('maxFailedIndexes $given on $count completions → $want', ({ count, given, want }) => {
    const job = indexedJob({ batchId: BATCH, header: header(k8sSpec), shard: { shard: 0, offset: 0, count }, suspend: false, maxFailedIndexes: given, settings });
    expect(job.spec?.maxFailedIndexes).toBe(want);
  });

  test.each([0, SHARD_SIZE + 1])('refuses a shard of %d indexes', (count) => {
    expect(() => indexedJob({ batchId: BATCH, header: header(k8sSpec), shard: { shard: 0, offset: 0, count }, suspend: false, settings })).toThrow(RangeError);
  });

  test('refuses a header without an image', () => {
    expect(() => indexedJob({ batchId: BATCH, header: header({ runtime: 'indexed-job' }), shard: { shard: 0, offset: 0, count: 1 }, suspend: false, settings })).toThrow(/template\.image/);
  });
});

describe('itemJob', () => {
  const h = header({
    runtime: 'job-per-item',
    labels: { jobgroup: 'jobexample' },
    template: { image: 'busybox:1.36', command: ['sh', '-c', 'echo Processing {{ url }} as {{ index }}'], env: { NAME: '{{ name }}', ITEM: '{{ item }}' } },
    parallelism: 2,
    retry: { backoffLimitPerItem: 1, maxFailedItems: 3, rules: [{ action: 'FailItem', onExitCodes: { operator: 'In', values: [2] } }] },
    activeDeadlineSeconds: 600,
    itemTimeoutSeconds: 30,
  });
  const items = [
    { name: 'apple', url: 'http://dbpedia.org/resource/Apple' },
    { name: 'banana', url: 'http://dbpedia.org/resource/Banana' },
  ];

  test.each([0, 1])('item %i: the template rendered for it', (index) => {
    const job = itemJob({ batchId: BATCH, header: h, index, item: items[index], suspend: false, settings });
    const labels = { jobgroup: 'jobexample', [BATCH_LABEL]: BATCH, [ROLE_LABEL]: 'item', [ITEM_LABEL]: String(index) };
    expect(job.metadata).toEqual({ name: `fanout-${BATCH}-i${index}`, namespace: 'fanout', labels });
    expect(job.spec).toMatchObject({
      completionMode: 'Indexed',
      completions: 1,
      parallelism: 1,
      backoffLimitPerIndex: 1,
      podReplacementPolicy: 'Failed',
      podFailurePolicy: { rules: [{ action: 'FailIndex', onExitCodes: { containerName: 'main', operator: 'In', values: [2] } }] },
      activeDeadlineSeconds: 600,
      ttlSecondsAfterFinished: 3600,
      suspend: false,
    });
    expect(job.spec).not.toHaveProperty('maxFailedIndexes');
    expect(job.spec?.template.metadata?.labels).toEqual(labels);
    const pod = job.spec!.template.spec!;
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.activeDeadlineSeconds).toBe(30);
    const c = pod.containers[0];
    expect(c.command).toEqual(['sh', '-c', `echo Processing ${items[index].url} as ${index}`]);
    expect(c.env).toEqual([
      { name: 'NAME', value: items[index].name },
      { name: 'ITEM', value: JSON.stringify(items[index]) },
      ...fanoutEnv(BATCH, index, settings),
      { name: 'FANOUT_ITEM_INDEX', value: String(index) },
    ]);
  });

  test('a per-item image is rendered; a string item is used raw', () => {
    const job = itemJob({ batchId: BATCH, header: header({ runtime: 'job-per-item', template: { image: 'registry/{{ item }}:1' } }), index: 4, item: 'rev', suspend: true, settings });
    expect(job.spec?.template.spec?.containers[0].image).toBe('registry/rev:1');
    expect(job.spec?.suspend).toBe(true);
  });

  test('an item that lacks a placeholder field throws the TemplateError', () => {
    expect(() => itemJob({ batchId: BATCH, header: h, index: 5, item: { url: 'u' }, suspend: false, settings })).toThrow(/item 5 has no field "name"/);
  });

  test('the header is not modified', () => {
    const before = JSON.stringify(h);
    itemJob({ batchId: BATCH, header: h, index: 0, item: items[0], suspend: false, settings });
    expect(JSON.stringify(h)).toBe(before);
  });
});

describe('workerJob', () => {
  test('the fine-parallel pattern: no completions, N workers that exit when the queue is empty', () => {
    const h = header({ task: 'rev', labels: { team: 'a' }, workers: { kubernetes: { image: 'fanout:dev', parallelism: 4, resources: { requests: { cpu: '250m' } }, serviceAccountName: 'worker' } } });
    const labels = { team: 'a', [BATCH_LABEL]: BATCH, [ROLE_LABEL]: 'worker' };
    expect(workerJob({ batchId: BATCH, header: h, suspend: false, settings })).toEqual({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: `fanout-${BATCH}-workers`, namespace: 'fanout', labels },
      spec: {
        parallelism: 4,
        backoffLimit: 6,
        ttlSecondsAfterFinished: 3600,
        suspend: false,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: 'Never',
            serviceAccountName: 'worker',
            containers: [
              {
                name: 'main',
                image: 'fanout:dev',
                command: ['fanout', 'worker', '--batch', BATCH, '--exit-when-empty'],
                env: [
                  { name: 'REDIS_URL', value: 'redis://redis.fanout.svc:6379' },
                  { name: 'FANOUT_API_URL', value: 'http://fanout-api.fanout.svc:8080' },
                  { name: 'FANOUT_BATCH_ID', value: BATCH },
                  { name: 'FANOUT_TOKEN', valueFrom: { secretKeyRef: { name: `fanout-${BATCH}`, key: 'token' } } },
                ],
                resources: { requests: { cpu: '250m' } },
                terminationMessagePolicy: 'FallbackToLogsOnError',
              },
            ],
          },
        },
      },
    });
  });

  test('tells workers the Redis key prefix of the installation when it has one', () => {
    const h = header({ runtime: 'queue', task: 'rev', workers: { kubernetes: { image: 'fanout:dev', parallelism: 2 } } });
    const env = workerJob({ batchId: BATCH, header: h, suspend: false, settings: { ...settings, redisPrefix: 'tenant7' } }).spec?.template.spec?.containers[0].env;
    expect(env).toContainEqual({ name: 'FANOUT_REDIS_PREFIX', value: 'tenant7' });
  });

  test('refuses a batch without workers.kubernetes', () => {
    expect(() => workerJob({ batchId: BATCH, header: header({ task: 'rev' }), suspend: false, settings })).toThrow(/workers\.kubernetes/);
  });
});

describe('headlessService', () => {
  test('clusterIP None, selecting the batch pods, in the batch namespace', () => {
    const h = header({ ...k8sSpec, namespace: 'team-a', labels: { team: 'a' }, networking: { headless: true } });
    expect(headlessService({ batchId: BATCH, header: h, settings })).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `fanout-${BATCH}`, namespace: 'team-a', labels: { team: 'a', [BATCH_LABEL]: BATCH } },
      spec: { clusterIP: 'None', selector: { [BATCH_LABEL]: BATCH } },
    });
  });
});

describe('the token', () => {
  test('appears only in the Secret; every item pod reads it through a secretKeyRef', () => {
    const token = 'fanout-token-SECRET-5f2c9a';
    const networked = header({ ...k8sSpec, networking: { headless: true } });
    const perItem = header({ runtime: 'job-per-item', template: { image: 'busybox', command: ['echo', '{{ url }}'] } });
    const jobs = [
      indexedJob({ batchId: BATCH, header: example, shard: { shard: 0, offset: 0, count: 3 }, suspend: false, settings }),
      itemJob({ batchId: BATCH, header: perItem, index: 0, item: { url: 'http://x' }, suspend: false, settings }),
    ];
    const others = [
      workerJob({ batchId: BATCH, header: header({ task: 'rev', workers: { kubernetes: { image: 'f', parallelism: 1 } } }), suspend: false, settings }),
      headlessService({ batchId: BATCH, header: networked, settings }),
    ];
    for (const m of [...jobs, ...others]) expect(JSON.stringify(m)).not.toContain(token);
    for (const job of jobs) {
      const env = job.spec!.template.spec!.containers[0].env!;
      expect(env.filter((e) => e.name === 'FANOUT_TOKEN')).toEqual([{ name: 'FANOUT_TOKEN', valueFrom: { secretKeyRef: { name: secretName(BATCH), key: 'token' } } }]);
    }
    expect(tokenSecret(BATCH, token, {}, settings).stringData).toEqual({ token });
  });
});
