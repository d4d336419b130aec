import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { batchHeaderSchema, type BatchHeader } from '../../src/domain/batch-spec.js';
import { headlessService, indexedJob, itemJob, tokenSecret, workerJob, type RuntimeSettings } from '../../src/runtimes/kubernetes/manifests.js';
import { connectionFromKubeconfig, kubeRequest, loadManifestValidator, type KubeConnection, type ManifestValidator } from './openapi-validate.js';
import { createNamespace, deleteNamespace, uniqueName } from './helpers.js';

/**
 * Every kind of object Fanout creates, from specs that use every template field, validated
 * against the OpenAPI v3 schemas of the API server under test and by a server-side dry run
 * with strict field validation (which also runs the API server's own validation).
 */

let conn: KubeConnection;
let validator: ManifestValidator;
let namespace: string;

beforeAll(async () => {
  conn = connectionFromKubeconfig(inject('kubeconfigPath'));
  validator = await loadManifestValidator(conn);
  namespace = await createNamespace(uniqueName('manifests'));
  return () => deleteNamespace(namespace);
});

const BATCH = 'b0000000000000000001';
const settings = (): RuntimeSettings => ({ namespace, apiUrl: 'http://fanout-api.fanout.svc:8080', redisUrl: 'redis://redis.fanout.svc:6379', redisPrefix: 'fanout', ttlSecondsAfterFinished: 3600 });

const fullTemplate = {
  image: 'ghcr.io/example/tools:1.2',
  command: ['fanout', 'exec', '--', 'process'],
  args: ['--url', '{{ url }}'],
  env: { MODE: 'fast' },
  resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '1', memory: '1Gi', 'nvidia.com/gpu': '1' } },
  serviceAccountName: 'batch-runner',
  nodeSelector: { 'kubernetes.io/os': 'linux', pool: 'batch' },
  tolerations: [
    { key: 'dedicated', operator: 'Equal', value: 'batch', effect: 'NoSchedule' },
    { operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 60 },
  ],
};

function header(spec: Record<string, unknown>): BatchHeader {
  return batchHeaderSchema.parse(spec);
}

const specs: Record<string, BatchHeader> = {
  indexed: header({
    runtime: 'indexed-job',
    labels: { jobgroup: 'jobexample', 'example.com/team': 'data' },
    template: fullTemplate,
    networking: { headless: true },
    parallelism: 3,
    activeDeadlineSeconds: 600,
    itemTimeoutSeconds: 60,
    ttlSecondsAfterFinished: 120,
    retry: {
      backoffLimitPerItem: 2,
      maxFailedItems: 5,
      rules: [
        { action: 'FailBatch', onExitCodes: { operator: 'In', values: [42] } },
        { action: 'FailItem', onExitCodes: { operator: 'In', values: [3, 4] } },
        { action: 'Count', onExitCodes: { operator: 'NotIn', values: [0, 1] } },
        { action: 'Ignore', onConditions: [{ type: 'Disruption' }] },
      ],
    },
  }),
  perItem: header({
    runtime: 'job-per-item',
    labels: { jobgroup: 'jobexample' },
    template: { ...fullTemplate, image: 'busybox:{{ tag }}', command: ['sh', '-c', 'echo Processing {{ url }}'], env: { URL: '{{ url }}' } },
    retry: { backoffLimitPerItem: 0, rules: [{ action: 'Ignore', onConditions: [{ type: 'Disruption' }] }] },
  }),
  workers: header({
    runtime: 'queue',
    task: 'rev',
    labels: { app: 'rev' },
    workers: { kubernetes: { image: 'ghcr.io/example/fanout-worker:1', parallelism: 4, resources: { requests: { cpu: '100m' } }, serviceAccountName: 'workers' } },
  }),
};

function generated(): Array<[string, unknown]> {
  const s = settings();
  return [
    ['indexed Job', indexedJob({ batchId: BATCH, header: specs.indexed, shard: { shard: 0, offset: 0, count: 5 }, suspend: false, maxFailedIndexes: 5, settings: s })],
    ['indexed Job, a later shard, suspended', indexedJob({ batchId: BATCH, header: specs.indexed, shard: { shard: 2, offset: 200_000, count: 100_000 }, suspend: true, settings: s })],
    ['item Job', itemJob({ batchId: BATCH, header: specs.perItem, index: 7, item: { url: 'http://dbpedia.org/resource/Apple', tag: '1.36' }, suspend: false, settings: s })],
    ['worker Job', workerJob({ batchId: BATCH, header: specs.workers, suspend: false, settings: s })],
    ['token Secret', tokenSecret(BATCH, 'fbt_token', specs.indexed.labels ?? {}, s)],
    ['headless Service', headlessService({ batchId: BATCH, header: specs.indexed, settings: s })],
  ];
}

describe('manifests Fanout generates, against the release under test', () => {
  it.each(generated().map(([what]) => [what]))('%s matches the OpenAPI v3 schema', (what) => {
    const doc = generated().find(([w]) => w === what)![1];
    expect(validator.validateManifest(doc)).toEqual([]);
  });

  it.each(generated().map(([what]) => [what]))('%s passes a strict server-side dry run', async (what) => {
    const doc = generated().find(([w]) => w === what)![1] as { apiVersion: string; kind: string };
    const plural = { Job: 'jobs', Secret: 'secrets', Service: 'services' }[doc.kind]!;
    const base = doc.apiVersion === 'v1' ? `/api/v1` : `/apis/${doc.apiVersion}`;
    const res = await kubeRequest(conn, 'POST', `${base}/namespaces/${namespace}/${plural}?dryRun=All&fieldValidation=Strict`, doc);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });

  it('the validator does catch a broken one (a misspelled pod field)', () => {
    const job = generated()[0][1] as any;
    job.spec.template.spec.restartPolicyy = 'Never';
    expect(validator.validateManifest(job).join('\n')).toMatch(/restartPolicyy/);
  });
});
