import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { parseIndexRanges, type IndexRange } from '../../domain/index-ranges.js';
import { CONTAINER, ITEM_LABEL, OFFSET_LABEL, ROLE_LABEL } from './names.js';

/**
 * Pure readers of what the API server reports about a batch's Jobs and pods: the observed half
 * of the reconcile loop. Nothing here trusts the input to be well formed: objects may come from
 * a typed list call (dates as Date) or a raw watch event (dates as strings), and a missing or
 * corrupt field gives "unknown", never a throw.
 */

export const COMPLETION_INDEX_ANNOTATION = 'batch.kubernetes.io/job-completion-index';
export const FAILURE_COUNT_ANNOTATION = 'batch.kubernetes.io/job-index-failure-count';
export const IGNORED_FAILURE_COUNT_ANNOTATION = 'batch.kubernetes.io/job-index-ignored-failure-count';

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

function nonNegativeInt(s: string | undefined): number | null {
  if (s === undefined || !/^\d+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** Epoch milliseconds of a Date or an RFC 3339 string, undefined when absent or unparseable. */
function millis(t: Date | string | null | undefined): number | undefined {
  if (t === undefined || t === null) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The pod's completion index (the job controller's annotation), or null when absent or corrupt. */
export function completionIndexOf(pod: V1Pod): number | null {
  return nonNegativeInt(pod.metadata?.annotations?.[COMPLETION_INDEX_ANNOTATION]);
}

/**
 * The global index of completion index 0 of the pod's Job, from the labels the manifests put
 * on pods: the item index for a job-per-item pod, the shard offset for an indexed-job pod.
 * Null for worker pods and pods we did not label.
 */
export function offsetOf(pod: V1Pod): number | null {
  const labels = pod.metadata?.labels ?? {};
  if (labels[ROLE_LABEL] === 'item') return nonNegativeInt(labels[ITEM_LABEL]);
  if (labels[ROLE_LABEL] === 'indexed') return nonNegativeInt(labels[OFFSET_LABEL]);
  return null;
}

/** Whether the pod may still run: any phase but Succeeded and Failed (Pending, Running, Unknown). */
export function isPodActive(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed';
}

/**
 * The finished attempt a pod stands for, or null while it runs (or when it has no completion
 * index). Exit code and message come from the CONTAINER's terminated state; a True
 * `DisruptionTarget` condition (eviction, preemption, drain) is the Disruption condition, and
 * `reason: DeadlineExceeded` (the pod's activeDeadlineSeconds, our itemTimeoutSeconds) Timeout.
 */
export function podAttempt(pod: V1Pod, offset: number): PodAttempt | null {
  const phase = pod.status?.phase;
  if (phase !== 'Succeeded' && phase !== 'Failed') return null;
  const completion = completionIndexOf(pod);
  if (completion === null) return null;
  const annotations = pod.metadata?.annotations ?? {};
  const failures = nonNegativeInt(annotations[FAILURE_COUNT_ANNOTATION]) ?? 0;
  const ignored = nonNegativeInt(annotations[IGNORED_FAILURE_COUNT_ANNOTATION]) ?? 0;

  const status = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER);
  const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
  const disrupted = (pod.status?.conditions ?? []).some((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  const condition = disrupted ? 'Disruption' : pod.status?.reason === 'DeadlineExceeded' ? 'Timeout' : undefined;
  const message = nonEmpty(terminated?.message) ?? nonEmpty(pod.status?.message);

  const startedAt = millis(terminated?.startedAt) ?? millis(pod.status?.startTime);
  const finishedAt = millis(terminated?.finishedAt) ?? lastTransition(pod) ?? startedAt ?? millis(pod.metadata?.creationTimestamp) ?? 0;

  return {
    index: offset + completion,
    attempt: 1 + failures + ignored,
    podName: pod.metadata?.name ?? '',
    outcome: phase === 'Succeeded' ? 'succeeded' : 'failed',
    ...(terminated !== undefined && Number.isInteger(terminated.exitCode) ? { exitCode: terminated.exitCode } : {}),
    ...(condition !== undefined ? { condition } : {}),
    ...(message !== undefined ? { message } : {}),
    ...(startedAt !== undefined ? { startedAt } : {}),
    finishedAt,
  };
}

function nonEmpty(s: string | undefined): string | undefined {
  const t = s?.trim();
  return t === undefined || t === '' ? undefined : t;
}

/** A pod killed before its container ran has no finishedAt; its last condition change is the end. */
function lastTransition(pod: V1Pod): number | undefined {
  let last: number | undefined;
  for (const c of pod.status?.conditions ?? []) {
    const t = millis(c.lastTransitionTime);
    if (t !== undefined && (last === undefined || t > last)) last = t;
  }
  return last;
}

/** What a Job reports about its indexes, shifted to global item indexes. */
export interface JobView {
  completed: number[];
  failed: number[];
  finished?: { type: 'Complete' | 'Failed'; reason: string; message: string };
  suspended: boolean;
  active: number;
}

function expand(ranges: IndexRange[], offset: number): number[] {
  const out: number[] = [];
  for (const r of ranges) for (let i = r.first; i <= r.last; i++) out.push(offset + i);
  return out;
}

/**
 * The Job's status as item indexes: `completedIndexes` and `failedIndexes` parsed tolerantly
 * (clipped to spec.completions) and shifted by the shard offset; `finished` from a True
 * Complete or Failed condition (reason `PodFailurePolicy`, `BackoffLimitExceeded`,
 * `DeadlineExceeded`, `MaxFailedIndexesExceeded`, ...); `suspended` from a True Suspended one.
 */
export function jobView(job: V1Job, offset: number): JobView {
  const status = job.status ?? {};
  const completions = job.spec?.completions ?? undefined;
  const conditions = status.conditions ?? [];
  const done = conditions.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  return {
    completed: expand(parseIndexRanges(status.completedIndexes ?? '', completions), offset),
    failed: expand(parseIndexRanges(status.failedIndexes ?? '', completions), offset),
    ...(done !== undefined ? { finished: { type: done.type as 'Complete' | 'Failed', reason: done.reason ?? '', message: done.message ?? '' } } : {}),
    suspended: conditions.some((c) => c.type === 'Suspended' && c.status === 'True'),
    active: status.active ?? 0,
  };
}
