import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BatchV1Api, CoreV1Api, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { newCluster, type Cluster } from '../helpers/cluster.js';
import type { ApiClient } from '../helpers/api-client.js';
import { createNamespace, deleteNamespace, describePods, kubeConfig, uniqueName, waitFor } from './helpers.js';

/**
 * Fanout as users run it against a cluster: a real `fanout up` process with KUBECONFIG pointing
 * at the suite's control plane and its own namespace, driven over HTTP. Pods reach it on
 * 127.0.0.1 (the test kubelet runs them as local processes).
 */
export interface FanoutOnKubernetes {
  cluster: Cluster;
  client: ApiClient;
  namespace: string;
  scratch: string;
  batchApi: BatchV1Api;
  coreApi: CoreV1Api;
  /** the batch's Jobs, by label fanout.dev/batch */
  jobsOf(batchId: string): Promise<V1Job[]>;
  podsOf(batchId: string): Promise<V1Pod[]>;
  /** polls the batch until its phase is one of `phases`; the error shows the batch and the pods */
  waitForPhase(batchId: string, phases: string[], timeoutMs?: number): Promise<any>;
  /** every item of a batch (all pages), with attempts */
  items(batchId: string): Promise<any[]>;
  /** what the `fanout up` process logged so far */
  output(): string;
  stop(): Promise<void>;
}

export async function startFanoutOnKubernetes(prefix: string, env: Record<string, string> = {}): Promise<FanoutOnKubernetes> {
  const namespace = await createNamespace(uniqueName(prefix));
  const cluster = newCluster(inject('redisUrl'));
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const proc = await cluster.up([], { KUBECONFIG: inject('kubeconfigPath'), FANOUT_NAMESPACE: namespace, LOG_LEVEL: process.env.FANOUT_TEST_LOG ?? 'warn', ...env });
  const kc = kubeConfig();
  const batchApi = kc.makeApiClient(BatchV1Api);
  const coreApi = kc.makeApiClient(CoreV1Api);
  const client = cluster.client;
  const self: FanoutOnKubernetes = {
    cluster,
    client,
    namespace,
    scratch,
    batchApi,
    coreApi,
    async jobsOf(batchId) {
      return (await batchApi.listNamespacedJob({ namespace, labelSelector: `fanout.dev/batch=${batchId}` })).items;
    },
    async podsOf(batchId) {
      return (await coreApi.listNamespacedPod({ namespace, labelSelector: `fanout.dev/batch=${batchId}` })).items;
    },
    async waitForPhase(batchId, phases, timeoutMs = 90_000) {
      let last: any;
      return waitFor(
        async () => {
          last = await client.getBatch(batchId);
          return phases.includes(last?.status?.phase) ? last : null;
        },
        {
          what: `batch ${batchId} to be ${phases.join(' or ')}`,
          timeoutMs,
          intervalMs: 250,
          describe: async () => `batch: ${JSON.stringify(last?.status)}\n${await describePods(namespace)}`,
        },
      );
    },
    async items(batchId) {
      const out: any[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${cursor}` : '';
        const page = (await client.json('GET', `/v1/batches/${batchId}/items?limit=500${q}`)).body;
        out.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      return out;
    },
    output: () => proc.output(),
    async stop() {
      // Kept beside the control plane's logs, for a failure to be read after the run.
      fs.writeFileSync(path.join(inject('controlPlaneDir'), 'logs', `fanout-${namespace}.log`), proc.output());
      await cluster.stopAll();
      await deleteNamespace(namespace).catch(() => {});
      fs.rmSync(scratch, { recursive: true, force: true });
    },
  };
  return self;
}

/** The NDJSON results of a batch, parsed. */
export async function resultsOf(client: ApiClient, batchId: string): Promise<any[]> {
  const res = await client.request('GET', `/v1/batches/${batchId}/results`);
  const text = await res.text();
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
