import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchV1Api, CoreV1Api, type V1Job, type V1JobSpec, type V1Pod } from '@kubernetes/client-node';
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
});
