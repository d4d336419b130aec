import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, BatchV1Api, CoreV1Api, PatchStrategy, Watch, setHeaderOptions, type V1Job, type V1JobSpec, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deleteNamespace, describePods, kubeConfig, restartApiServer, uniqueName, waitFor } from './helpers.js';

/**
 * The harness itself against the real job controller: the test kubelet runs Job pods as local
 * processes and reports their status; the job controller computes everything else.
 */

const kc = kubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const namespaces: string[] = [];
let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'fanout-k8s-test-'));
});

afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns)));
  rmSync(scratch, { recursive: true, force: true });
});

async function namespace(prefix: string): Promise<string> {
  const ns = await createNamespace(uniqueName(prefix));
  namespaces.push(ns);
  return ns;
}

/** An Indexed Job running `sh -c script` (JOB_COMPLETION_INDEX comes from the job controller). */
function indexedJob(name: string, script: string, spec: Partial<V1JobSpec> = {}, env: Record<string, string> = {}): V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name },
    spec: {
      completionMode: 'Indexed',
      completions: 3,
      parallelism: 3,
      backoffLimit: 6,
      ...spec,
      template: {
        spec: {
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'main',
              image: 'busybox',
              command: ['sh', '-c', script],
              env: Object.entries(env).map(([k, value]) => ({ name: k, value })),
              terminationMessagePolicy: 'FallbackToLogsOnError',
            },
          ],
        },
      },
    },
  };
}

/** Waits for the Job's Complete or Failed condition; answers the Job. */
async function jobFinished(ns: string, name: string, timeoutMs = 60_000): Promise<V1Job> {
  return waitFor(
    async () => {
      const job = await batch.readNamespacedJob({ name, namespace: ns });
      const done = job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      return done ? job : undefined;
    },
    {
      what: `Job ${ns}/${name} to finish`,
      timeoutMs,
      describe: async () => `job status: ${JSON.stringify((await batch.readNamespacedJob({ name, namespace: ns })).status)}\n${await describePods(ns)}`,
    },
  );
}

/** Records every version of one pod from now on, through a watch. */
async function watchPod(ns: string, name: string): Promise<{ versions: V1Pod[]; deleted: () => boolean; stop: () => void }> {
  const versions: V1Pod[] = [];
  let deleted = false;
  const req = await new Watch(kc).watch(
    `/api/v1/namespaces/${ns}/pods`,
    { fieldSelector: `metadata.name=${name}` },
    (type, pod: V1Pod) => {
      if (type === 'DELETED') deleted = true;
      else if (type === 'ADDED' || type === 'MODIFIED') versions.push(pod);
    },
    () => {},
  );
  return { versions, deleted: () => deleted, stop: () => req.abort() };
}

const condition = (job: V1Job, type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === 'True');

async function jobPods(ns: string, job: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: ns, labelSelector: `batch.kubernetes.io/job-name=${job}` })).items;
}

describe('control plane + test kubelet', () => {
  it('runs an Indexed Job to Complete with completedIndexes 0-4', async () => {
    const ns = await namespace('indexed');
    await batch.createNamespacedJob({ namespace: ns, body: indexedJob('idx', 'echo "index $JOB_COMPLETION_INDEX"', { completions: 5, parallelism: 3 }) });
    const job = await jobFinished(ns, 'idx');
    expect(condition(job, 'Complete'), JSON.stringify(job.status)).toBeTruthy();
    expect(job.status?.completedIndexes).toBe('0-4');
    expect(job.status?.succeeded).toBe(5);
    const pods = await jobPods(ns, 'idx');
    expect(pods.every((p) => p.status?.phase === 'Succeeded')).toBe(true);
    expect(pods.every((p) => p.spec?.nodeName === 'fanout-test-node')).toBe(true);
  });

  it('fails the Job through a podFailurePolicy FailJob rule on exit code 42', async () => {
    const ns = await namespace('pfp');
    const script = 'if [ "$JOB_COMPLETION_INDEX" = 1 ]; then echo "index 1 gives up" >&2; exit 42; fi; sleep 1';
    await batch.createNamespacedJob({
      namespace: ns,
      body: indexedJob('pfp', script, {
        podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { containerName: 'main', operator: 'In', values: [42] } }] },
      }),
    });
    const job = await jobFinished(ns, 'pfp');
    const failed = condition(job, 'Failed');
    expect(failed?.reason, JSON.stringify(job.status)).toBe('PodFailurePolicy');
    expect(failed?.message).toMatch(/exit code 42/);
    const pod = (await jobPods(ns, 'pfp')).find((p) => p.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'] === '1');
    const terminated = pod?.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated?.exitCode).toBe(42);
    expect(terminated?.reason).toBe('Error');
    // FallbackToLogsOnError: the end of the output is the termination message.
    expect(terminated?.message).toContain('index 1 gives up');
  });

  it('records failedIndexes and the per-index failure count with backoffLimitPerIndex', async () => {
    const ns = await namespace('perindex');
    await batch.createNamespacedJob({
      namespace: ns,
      body: indexedJob('per', 'if [ "$JOB_COMPLETION_INDEX" = 1 ]; then exit 3; fi', { backoffLimit: undefined, backoffLimitPerIndex: 1 }),
    });
    const job = await jobFinished(ns, 'per', 90_000);
    expect(job.status?.failedIndexes, JSON.stringify(job.status)).toBe('1');
    expect(job.status?.completedIndexes).toBe('0,2');
    expect(condition(job, 'Failed')?.reason).toBe('FailedIndexes');
    const index1 = (await jobPods(ns, 'per')).filter((p) => p.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'] === '1');
    const counts = index1.map((p) => p.metadata?.annotations?.['batch.kubernetes.io/job-index-failure-count']).sort();
    // the first attempt, then one retry (backoffLimitPerIndex 1)
    expect(counts, JSON.stringify(index1.map((p) => p.metadata?.annotations))).toEqual(['0', '1']);
  });

  it('ignores an eviction through an Ignore rule on DisruptionTarget: the index runs again, status.failed stays 0', async () => {
    const ns = await namespace('evict');
    const mark = join(scratch, `${ns}-evicted-once`);
    // Index 1 blocks the first time (until evicted) and succeeds the second time.
    const script = 'if [ "$JOB_COMPLETION_INDEX" = 1 ] && [ ! -e "$MARK" ]; then touch "$MARK"; sleep 60; fi; echo ok';
    await batch.createNamespacedJob({
      namespace: ns,
      body: indexedJob(
        'ev',
        script,
        // backoffLimitPerIndex 0: a counted failure would fail index 1 at once.
        {
          backoffLimit: undefined,
          backoffLimitPerIndex: 0,
          podFailurePolicy: { rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }] },
        },
        { MARK: mark },
      ),
    });
    const victim = await waitFor(
      async () =>
        (await jobPods(ns, 'ev')).find(
          (p) => p.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'] === '1' && p.status?.phase === 'Running',
        ),
      { what: 'the pod of index 1 to run', timeoutMs: 30_000, describe: () => describePods(ns) },
    );
    const name = victim.metadata?.name ?? '';
    const seen = await watchPod(ns, name);
    await core.createNamespacedPodEviction({ name, namespace: ns, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: ns } } });
    const job = await jobFinished(ns, 'ev');
    expect(condition(job, 'Complete'), JSON.stringify(job.status)).toBeTruthy();
    expect(job.status?.completedIndexes).toBe('0-2');
    expect(job.status?.failed ?? 0).toBe(0);
    expect(job.status?.failedIndexes ?? '').toBe('');
    // The replacement of index 1 carries the ignored failure in its annotations.
    const retry = (await jobPods(ns, 'ev')).find((p) => p.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'] === '1' && p.metadata?.name !== name);
    expect(retry?.metadata?.annotations?.['batch.kubernetes.io/job-index-ignored-failure-count']).toBe('1');
    expect(retry?.metadata?.annotations?.['batch.kubernetes.io/job-index-failure-count']).toBe('0');
    // The kubelet's side: SIGTERM (exit 143), phase Failed, the API server's DisruptionTarget kept, then its final delete.
    const failed = seen.versions.find((p) => p.status?.phase === 'Failed');
    seen.stop();
    expect(failed?.status?.conditions?.find((c) => c.type === 'DisruptionTarget')?.status, 'evicted pod never seen Failed').toBe('True');
    expect(failed?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(143);
    expect(seen.deleted()).toBe(true);
  });

  it('finishes a Job across a kube-apiserver restart', async () => {
    const ns = await namespace('restart');
    await batch.createNamespacedJob({ namespace: ns, body: indexedJob('rs', 'sleep 2; echo ok', { completions: 4, parallelism: 2 }) });
    await waitFor(async () => (await jobPods(ns, 'rs')).some((p) => p.status?.phase === 'Running'), {
      what: 'a running pod',
      timeoutMs: 30_000,
      describe: () => describePods(ns),
    });
    await restartApiServer();
    const job = await jobFinished(ns, 'rs', 90_000);
    expect(condition(job, 'Complete'), JSON.stringify(job.status)).toBeTruthy();
    expect(job.status?.completedIndexes).toBe('0-3');
  });
});

describe('test kubelet: pod environment and lifetime', () => {
  async function podFinished(ns: string, name: string, timeoutMs = 30_000): Promise<V1Pod> {
    return waitFor(
      async () => {
        const pod = await core.readNamespacedPod({ name, namespace: ns });
        return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' ? pod : undefined;
      },
      { what: `pod ${ns}/${name} to finish`, timeoutMs, describe: () => describePods(ns) },
    );
  }

  it('resolves secretKeyRef, configMapKeyRef, envFrom, fieldRef and $(VAR) references', async () => {
    const ns = await namespace('env');
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'creds' }, data: { token: Buffer.from('s3cr3t value').toString('base64') } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'settings' }, data: { MODE: 'fast', greeting: 'hello' } } });
    const checks = [
      '[ "$TOKEN" = "s3cr3t value" ] || { echo TOKEN mismatch; exit 1; }',
      '[ "$GREETING" = hello ] || { echo "GREETING=$GREETING"; exit 1; }',
      '[ "$CFG_MODE" = fast ] || { echo "CFG_MODE=$CFG_MODE"; exit 1; }',
      '[ "$POD_NAME" = envpod ] || { echo "POD_NAME=$POD_NAME"; exit 1; }',
      `[ "$POD_NS" = ${ns} ] || { echo "POD_NS=$POD_NS"; exit 1; }`,
      '[ "$TIER" = batch ] || { echo "TIER=$TIER"; exit 1; }',
      '[ "$COMBINED" = "envpod/fast" ] || { echo "COMBINED=$COMBINED"; exit 1; }',
      '[ -d "$FANOUT_TEST_VOLUME_SCRATCH_SPACE" ] || { echo "no emptyDir"; exit 1; }',
    ].join('\n');
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'envpod', labels: { tier: 'batch' } },
        spec: {
          restartPolicy: 'Never',
          volumes: [{ name: 'scratch-space', emptyDir: {} }],
          containers: [
            {
              name: 'main',
              image: 'busybox',
              command: ['sh', '-c', checks],
              terminationMessagePolicy: 'FallbackToLogsOnError',
              envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }],
              env: [
                { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } },
                { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'settings', key: 'greeting' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'TIER', valueFrom: { fieldRef: { fieldPath: "metadata.labels['tier']" } } },
                { name: 'COMBINED', value: '$(POD_NAME)/$(CFG_MODE)' },
              ],
              volumeMounts: [{ name: 'scratch-space', mountPath: '/scratch' }],
            },
          ],
        },
      },
    });
    const pod = await podFinished(ns, 'envpod');
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    expect(pod.status?.phase, terminated?.message).toBe('Succeeded');
    expect(terminated?.exitCode).toBe(0);
  });

  it('runs a Deployment (restartPolicy Always: a crashed container restarts) and stops its pods on scale-down', async () => {
    const ns = await namespace('deploy');
    const apps = kc.makeApiClient(AppsV1Api);
    const mark = join(scratch, `${ns}-crashed-once`);
    // Crashes once, then stays up until SIGTERM.
    const script = `if [ ! -e ${mark} ]; then touch ${mark}; exit 1; fi; trap 'exit 0' TERM; while true; do sleep 0.2; done`;
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { terminationGracePeriodSeconds: 5, containers: [{ name: 'main', image: 'busybox', command: ['sh', '-c', script] }] },
          },
        },
      },
    });
    await waitFor(async () => (await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).status?.availableReplicas === 1, {
      what: 'Deployment web to be available',
      timeoutMs: 30_000,
      describe: () => describePods(ns),
    });
    const [pod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' })).items;
    const status = pod.status?.containerStatuses?.[0];
    expect(status?.restartCount).toBe(1);
    expect(status?.lastState?.terminated?.exitCode).toBe(1);
    await apps.patchNamespacedDeploymentScale(
      { name: 'web', namespace: ns, body: { spec: { replicas: 0 } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitFor(async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' })).items.length === 0, {
      what: 'the pod to be gone after scale-down',
      timeoutMs: 30_000,
      describe: () => describePods(ns),
    });
  });

  it('fails a pod past its activeDeadlineSeconds with reason DeadlineExceeded', async () => {
    const ns = await namespace('deadline');
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'slow' },
        spec: { restartPolicy: 'Never', activeDeadlineSeconds: 1, terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'busybox', command: ['sleep', '30'] }] },
      },
    });
    const pod = await podFinished(ns, 'slow');
    expect(pod.status?.phase).toBe('Failed');
    expect(pod.status?.reason).toBe('DeadlineExceeded');
  });
});
