import type { IndexRange } from '../domain/index-ranges.js';

/**
 * What the Kubernetes runtime observed about a batch's Jobs and pods, in item indexes: built by
 * the pure readers of src/runtimes/kubernetes/observe.ts, recorded by `applyKubernetesObservation`
 * (src/store/kubernetes-sync.ts). Kept below both so the store needs nothing of the runtime.
 */

/** One finished pod: which item, which attempt of it, and how it ended. */
export interface PodAttempt {
  /** The global item index: the shard's offset plus the pod's completion index. */
  index: number;
  /** 1 + the failure-count + ignored-failure-count annotations (the pods of that index that failed before this one). */
  attempt: number;
  podName: string;
  outcome: 'succeeded' | 'failed';
  exitCode?: number;
  condition?: 'Disruption' | 'Timeout';
  message?: string;
  startedAt?: number;
  finishedAt: number;
}

/** Everything the cluster says about one batch's items, in item indexes (see observeBatch). */
export interface BatchObservation {
  /** indexes the Jobs report completed / failed */
  completed: IndexRange[];
  failed: IndexRange[];
  /** items with a pod that has not ended (and is not being deleted), and which attempt it is */
  running: Map<number, number>;
  /** one per pod that ended */
  attempts: PodAttempt[];
  /** a Job ended Failed for a reason that ends the batch (anything but FailedIndexes) */
  jobFailed?: { reason: string; message: string };
}
