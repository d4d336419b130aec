import { BatchV1Api, CoreV1Api, ListWatch, Watch, type CoreV1Event, type KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { BATCH_LABEL } from './names.js';
import { offsetOf, podAttempt, type PodAttempt } from './observe.js';

/**
 * What the dispatcher knows of the cluster: per namespace, watches (list, then watch) of
 * Fanout's Jobs and pods (label `fanout.dev/batch`) and of the job controller's `FailedCreate`
 * events, kept in memory. Every change wakes the batch it belongs to. client-node's ListWatch
 * lists again by itself after `410 Gone`, but stops for good after any other error (a dropped
 * connection, an API server that restarted): those restart here after a second.
 */
export class ClusterCache {
  private readonly jobs = new Map<string, ListWatch<V1Job>>();
  private readonly pods = new Map<string, ListWatch<V1Pod>>();
  private readonly failedCreates = new Map<string, ListWatch<CoreV1Event>>();
  /** attempts of pods deleted right after they ended (eviction, cancel), until a reconcile takes them */
  private readonly tombstones = new Map<string, PodAttempt[]>();
  private stopped = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespaces: string[],
    private readonly logger: Logger,
    private readonly notify: (batchId: string) => void,
  ) {}

  /** Lists and starts watching every namespace; resolves once the first lists are in. */
  async start(): Promise<void> {
    const batchApi = this.kc.makeApiClient(BatchV1Api);
    const coreApi = this.kc.makeApiClient(CoreV1Api);
    for (const namespace of this.namespaces) {
      const jobs = this.watch<V1Job>(`jobs in ${namespace}`, `/apis/batch/v1/namespaces/${namespace}/jobs`, () =>
        batchApi.listNamespacedJob({ namespace, labelSelector: BATCH_LABEL }),
      );
      const pods = this.watch<V1Pod>(`pods in ${namespace}`, `/api/v1/namespaces/${namespace}/pods`, () =>
        coreApi.listNamespacedPod({ namespace, labelSelector: BATCH_LABEL }),
      );
      const events = this.watch<CoreV1Event>(
        `events in ${namespace}`,
        `/api/v1/namespaces/${namespace}/events`,
        () => coreApi.listNamespacedEvent({ namespace, fieldSelector: 'reason=FailedCreate' }),
        'reason=FailedCreate',
      );
      const wake = (obj: V1Job | V1Pod) => {
        const id = obj.metadata?.labels?.[BATCH_LABEL];
        if (id) this.notify(id);
      };
      for (const verb of ['add', 'update', 'delete'] as const) jobs.on(verb, wake);
      for (const verb of ['add', 'update'] as const) pods.on(verb, wake);
      pods.on('delete', (pod) => {
        const id = pod.metadata?.labels?.[BATCH_LABEL];
        const offset = offsetOf(pod);
        const attempt = offset === null ? null : podAttempt(pod, offset);
        if (id && attempt) this.tombstones.set(id, [...(this.tombstones.get(id) ?? []), attempt]);
        wake(pod);
      });
      const wakeJob = (e: CoreV1Event) => {
        const job = e.involvedObject?.kind === 'Job' ? jobs.get(e.involvedObject.name ?? '', namespace) : undefined;
        if (job) wake(job);
      };
      events.on('add', wakeJob);
      events.on('update', wakeJob);
      this.jobs.set(namespace, jobs);
      this.pods.set(namespace, pods);
      this.failedCreates.set(namespace, events);
      await Promise.all([this.startWatch(jobs), this.startWatch(pods), this.startWatch(events)]);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of [...this.jobs.values(), ...this.pods.values(), ...this.failedCreates.values()]) await w.stop().catch(() => {});
  }

  jobsOf(namespace: string, batchId: string): V1Job[] {
    return (this.jobs.get(namespace)?.list(namespace) ?? []).filter((j) => j.metadata?.labels?.[BATCH_LABEL] === batchId);
  }

  job(namespace: string, name: string): V1Job | undefined {
    return this.jobs.get(namespace)?.get(name, namespace);
  }

  podsOf(namespace: string, batchId: string): V1Pod[] {
    return (this.pods.get(namespace)?.list(namespace) ?? []).filter((p) => p.metadata?.labels?.[BATCH_LABEL] === batchId);
  }

  failedCreatesIn(namespace: string): readonly CoreV1Event[] {
    return this.failedCreates.get(namespace)?.list(namespace) ?? [];
  }

  /** Attempts of the batch's pods that were deleted since the last call. */
  takeTombstones(batchId: string): PodAttempt[] {
    const out = this.tombstones.get(batchId) ?? [];
    this.tombstones.delete(batchId);
    return out;
  }

  /** Batch ids that have Jobs on the cluster. */
  batchesOnCluster(): Set<string> {
    const ids = new Set<string>();
    for (const [namespace, jobs] of this.jobs) {
      for (const job of jobs.list(namespace)) {
        const id = job.metadata?.labels?.[BATCH_LABEL];
        if (id) ids.add(id);
      }
    }
    return ids;
  }

  private watch<T extends { metadata?: { name?: string; namespace?: string } }>(
    what: string,
    path: string,
    list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>,
    fieldSelector?: string,
  ): ListWatch<T> {
    const w = new ListWatch<T>(path, new Watch(this.kc), list as never, false, fieldSelector ? undefined : BATCH_LABEL, fieldSelector);
    w.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.logger.debug({ err: (err as Error)?.message, what }, 'kubernetes watch ended; restarting');
      setTimeout(() => void this.startWatch(w), 1000).unref();
    });
    // With no resource version (the first start, or after 410 Gone) it lists everything again;
    // otherwise it resumes the watch where it left off.
    w.on('connect', () => {
      const resourceVersion = w.latestResourceVersion();
      this.logger.debug({ what, relist: resourceVersion === '', resourceVersion }, 'kubernetes watch connecting');
    });
    return w;
  }

  private async startWatch(w: ListWatch<any>): Promise<void> {
    if (this.stopped) return;
    try {
      await w.start();
    } catch (err) {
      // The list failed (API server down): the error callback ran too, and retries.
      this.logger.debug({ err: (err as Error).message }, 'kubernetes watch could not start');
    }
  }
}
