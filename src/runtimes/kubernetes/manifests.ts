import type { V1Container, V1EnvVar, V1Job, V1JobSpec, V1PodFailurePolicy, V1PodFailurePolicyRule, V1PodSpec, V1ResourceRequirements, V1Secret, V1Service } from '@kubernetes/client-node';
import { isReservedLabelKey, type BatchHeader, type RetryRule, type Template } from '../../domain/batch-spec.js';
import { renderTemplate } from '../../domain/template.js';
import { BATCH_LABEL, CONTAINER, ITEM_LABEL, OFFSET_LABEL, ROLE_LABEL, SHARD_SIZE, itemJobName, jobName, secretName, serviceName, workerJobName, type Role } from './names.js';

/**
 * Pure builders of the Kubernetes objects a batch runs as (the job controller's habit of pure
 * helpers split from I/O): no client, no clock, the same input always gives the same manifest.
 * The spec was validated by the schema and runtimeProblems, so quantities, labels and names
 * are trusted here. Tokens appear only in the Secret; pods read them through a secretKeyRef.
 */

export { BATCH_LABEL, CONTAINER, ITEM_LABEL, OFFSET_LABEL, ROLE_LABEL, SHARD_SIZE, itemJobName, jobName, secretName, serviceName, shardsOf, workerJobName } from './names.js';
export type { Role } from './names.js';

/** What the manifests need from the server's configuration. */
export interface RuntimeSettings {
  namespace: string;
  /** URL pods use to reach the Fanout API. */
  apiUrl: string;
  /** For worker pods. */
  redisUrl: string;
  /** Default when the batch sets none. */
  ttlSecondsAfterFinished: number;
  /** The Redis key prefix of this installation, for worker pods (default `fanout`). */
  redisPrefix?: string;
}

/** The namespace a batch's objects live in: the batch's own, else the server's. */
export function namespaceOf(header: Pick<BatchHeader, 'namespace'>, settings: RuntimeSettings): string {
  return header.namespace ?? settings.namespace;
}

/** The batch's labels (minus keys Kubernetes or Fanout own) plus ours, which always win. */
function labelsOf(batchId: string, header: BatchHeader, role?: Role, extra: Record<string, string> = {}): Record<string, string> {
  const own = Object.entries(header.labels ?? {}).filter(([key]) => !isReservedLabelKey(key));
  return { ...Object.fromEntries(own), [BATCH_LABEL]: batchId, ...(role !== undefined ? { [ROLE_LABEL]: role } : {}), ...extra };
}

const ACTIONS: Record<RetryRule['action'], string> = { FailBatch: 'FailJob', FailItem: 'FailIndex', Ignore: 'Ignore', Count: 'Count' };

/**
 * The batch's retry rules as a Job's `podFailurePolicy`, in the same order (first match wins in
 * both). Exit codes match the CONTAINER, sorted and de-duplicated as the API server requires;
 * the Disruption condition is the pod condition `DisruptionTarget`. What a pod failure policy
 * cannot say (onHttpStatus, the Timeout condition, exit code 0 with "In") is dropped: the spec
 * check rejects it for Kubernetes runtimes first. Undefined when no rule remains.
 */
export function podFailurePolicyOf(rules: RetryRule[]): V1PodFailurePolicy | undefined {
  const out: V1PodFailurePolicyRule[] = [];
  for (const rule of rules) {
    const action = ACTIONS[rule.action];
    if (rule.onExitCodes !== undefined) {
      const { operator } = rule.onExitCodes;
      const values = [...new Set(rule.onExitCodes.values)].filter((v) => !(operator === 'In' && v === 0)).sort((a, b) => a - b);
      if (values.length > 0) out.push({ action, onExitCodes: { containerName: CONTAINER, operator, values } });
    } else if (rule.onConditions !== undefined) {
      if (rule.onConditions.some((c) => c.type === 'Disruption')) {
        out.push({ action, onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] });
      }
    }
  }
  return out.length > 0 ? { rules: out } : undefined;
}

/** The environment every item pod gets: where the API is, which batch, its offset and token. */
export function fanoutEnv(batchId: string, offset: number, settings: RuntimeSettings): V1EnvVar[] {
  return [
    { name: 'FANOUT_API_URL', value: settings.apiUrl },
    { name: 'FANOUT_BATCH_ID', value: batchId },
    { name: 'FANOUT_INDEX_OFFSET', value: String(offset) },
    { name: 'FANOUT_TOKEN', valueFrom: { secretKeyRef: { name: secretName(batchId), key: 'token' } } },
  ];
}

/** The Secret with the batch-scoped token; `settings.namespace` must be the batch's namespace. */
export function tokenSecret(batchId: string, token: string, labels: Record<string, string>, settings: RuntimeSettings): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secretName(batchId), namespace: settings.namespace, labels: { ...labels, [BATCH_LABEL]: batchId } },
    type: 'Opaque',
    stringData: { token },
  };
}

function resourcesOf(resources: Template['resources']): V1ResourceRequirements | undefined {
  if (resources === undefined) return undefined;
  return { ...(resources.requests !== undefined ? { requests: { ...resources.requests } } : {}), ...(resources.limits !== undefined ? { limits: { ...resources.limits } } : {}) };
}

/** The one container of an item pod; template env first, so ours win if a name were repeated. */
function itemContainer(template: Template, env: V1EnvVar[]): V1Container {
  const templateEnv = Object.entries(template.env ?? {}).map(([name, value]) => ({ name, value }));
  const resources = resourcesOf(template.resources);
  return {
    name: CONTAINER,
    image: template.image,
    ...(template.command !== undefined ? { command: [...template.command] } : {}),
    ...(template.args !== undefined ? { args: [...template.args] } : {}),
    env: [...templateEnv, ...env],
    ...(resources !== undefined ? { resources } : {}),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

function itemPodSpec(header: BatchHeader, template: Template, env: V1EnvVar[], subdomain?: string): V1PodSpec {
  return {
    restartPolicy: 'Never',
    ...(template.serviceAccountName !== undefined ? { serviceAccountName: template.serviceAccountName } : {}),
    ...(template.nodeSelector !== undefined ? { nodeSelector: { ...template.nodeSelector } } : {}),
    ...(template.tolerations !== undefined ? { tolerations: template.tolerations.map((t) => ({ ...t })) } : {}),
    ...(header.itemTimeoutSeconds !== undefined ? { activeDeadlineSeconds: header.itemTimeoutSeconds } : {}),
    ...(subdomain !== undefined ? { subdomain } : {}),
    containers: [itemContainer(template, env)],
  };
}

/** The Job fields the indexed-job and job-per-item runtimes share (the per-index retry budget). */
function indexedSpec(header: BatchHeader, settings: RuntimeSettings, suspend: boolean): Omit<V1JobSpec, 'template'> {
  const podFailurePolicy = podFailurePolicyOf(header.retry.rules);
  return {
    completionMode: 'Indexed',
    backoffLimitPerIndex: header.retry.backoffLimitPerItem,
    ...(podFailurePolicy !== undefined ? { podFailurePolicy } : {}),
    // Required with podFailurePolicy; also keeps a terminating pod and its replacement from overlapping.
    podReplacementPolicy: 'Failed',
    ...(header.activeDeadlineSeconds !== undefined ? { activeDeadlineSeconds: header.activeDeadlineSeconds } : {}),
    ttlSecondsAfterFinished: header.ttlSecondsAfterFinished ?? settings.ttlSecondsAfterFinished,
    suspend,
  };
}

function requireImage(header: BatchHeader, batchId: string): Template & { image: string } {
  const template = header.template;
  if (template?.image === undefined) throw new Error(`batch ${batchId}: runtime "${header.runtime}" needs template.image`);
  return template as Template & { image: string };
}

/**
 * One shard of an indexed-job batch: completion index `i` runs global item `shard.offset + i`.
 * Template strings are passed as written: `{{ }}` placeholders are filled inside the pod by
 * `fanout exec`, which fetches its item from the API.
 */
export function indexedJob(a: { batchId: string; header: BatchHeader; shard: { shard: number; offset: number; count: number }; suspend: boolean; maxFailedIndexes?: number; settings: RuntimeSettings }): V1Job {
  const { batchId, header, shard, settings } = a;
  if (!Number.isSafeInteger(shard.count) || shard.count < 1 || shard.count > SHARD_SIZE) {
    throw new RangeError(`a shard holds 1 to ${SHARD_SIZE} indexes, got ${shard.count}`);
  }
  const template = requireImage(header, batchId);
  const labels = labelsOf(batchId, header, 'indexed', { [OFFSET_LABEL]: String(shard.offset) });
  const subdomain = header.networking?.headless === true ? serviceName(batchId) : undefined;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: jobName(batchId, shard.shard), namespace: namespaceOf(header, settings), labels },
    spec: {
      ...indexedSpec(header, settings, a.suspend),
      completions: shard.count,
      parallelism: Math.min(header.parallelism, shard.count),
      // Kubernetes refuses maxFailedIndexes above completions; more failures than indexes cannot happen anyway.
      ...(a.maxFailedIndexes !== undefined ? { maxFailedIndexes: Math.min(a.maxFailedIndexes, shard.count) } : {}),
      template: {
        metadata: { labels: { ...labels } },
        spec: itemPodSpec(header, template, fanoutEnv(batchId, shard.offset, settings), subdomain),
      },
    },
  };
}

/**
 * The Job of one item of a job-per-item batch (the reference's expansion pattern): the
 * template rendered for the item, run as an Indexed Job of one completion, so its pods carry
 * the same failure-count annotations as an indexed-job's and one observer reads both.
 */
export function itemJob(a: { batchId: string; header: BatchHeader; index: number; item: unknown; suspend: boolean; settings: RuntimeSettings }): V1Job {
  const { batchId, header, index, settings } = a;
  requireImage(header, batchId);
  const template = renderTemplate(header.template, a.item, index) as Template & { image: string };
  const labels = labelsOf(batchId, header, 'item', { [ITEM_LABEL]: String(index) });
  const env = [...fanoutEnv(batchId, index, settings), { name: 'FANOUT_ITEM_INDEX', value: String(index) }];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: itemJobName(batchId, index), namespace: namespaceOf(header, settings), labels },
    spec: {
      ...indexedSpec(header, settings, a.suspend),
      completions: 1,
      parallelism: 1,
      template: { metadata: { labels: { ...labels } }, spec: itemPodSpec(header, template, env) },
    },
  };
}

/**
 * The workers of a queue batch as one Job (the reference's fine-parallel work queue): no
 * completions, `parallelism` pods that each lease items until the queue is empty; the Job
 * succeeds when one of them exits 0. A crashed worker is replaced, up to backoffLimit times.
 */
export function workerJob(a: { batchId: string; header: BatchHeader; suspend: boolean; settings: RuntimeSettings }): V1Job {
  const { batchId, header, settings } = a;
  const workers = header.workers?.kubernetes;
  if (workers === undefined) throw new Error(`batch ${batchId}: a worker Job needs workers.kubernetes`);
  const labels = labelsOf(batchId, header, 'worker');
  const resources = resourcesOf(workers.resources);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: workerJobName(batchId), namespace: namespaceOf(header, settings), labels },
    spec: {
      parallelism: workers.parallelism,
      backoffLimit: 6,
      ...(header.activeDeadlineSeconds !== undefined ? { activeDeadlineSeconds: header.activeDeadlineSeconds } : {}),
      ttlSecondsAfterFinished: header.ttlSecondsAfterFinished ?? settings.ttlSecondsAfterFinished,
      suspend: a.suspend,
      template: {
        metadata: { labels: { ...labels } },
        spec: {
          restartPolicy: 'Never',
          ...(workers.serviceAccountName !== undefined ? { serviceAccountName: workers.serviceAccountName } : {}),
          containers: [
            {
              name: CONTAINER,
              image: workers.image,
              command: ['fanout', 'worker', '--batch', batchId, '--exit-when-empty'],
              // The token lets a worker read its batch's status (to exit once it is done).
              env: [
                { name: 'REDIS_URL', value: settings.redisUrl },
                ...(settings.redisPrefix !== undefined ? [{ name: 'FANOUT_REDIS_PREFIX', value: settings.redisPrefix }] : []),
                { name: 'FANOUT_API_URL', value: settings.apiUrl },
                { name: 'FANOUT_BATCH_ID', value: batchId },
                { name: 'FANOUT_TOKEN', valueFrom: { secretKeyRef: { name: secretName(batchId), key: 'token' } } },
              ],
              ...(resources !== undefined ? { resources } : {}),
              terminationMessagePolicy: 'FallbackToLogsOnError',
            },
          ],
        },
      },
    },
  };
}

/** The headless Service that gives indexed-job pods DNS names `<job>-<index>.<service>`. */
export function headlessService(a: { batchId: string; header: BatchHeader; settings: RuntimeSettings }): V1Service {
  const { batchId, header, settings } = a;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName(batchId), namespace: namespaceOf(header, settings), labels: labelsOf(batchId, header) },
    spec: { clusterIP: 'None', selector: { [BATCH_LABEL]: batchId } },
  };
}
