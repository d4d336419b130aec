import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import { mergeIndexRanges, parseIndexRanges, type IndexRange } from '../../domain/index-ranges.js';
import type { BatchObservation, PodAttempt } from '../../contracts/kubernetes-observation.js';
import { CONTAINER, ITEM_LABEL, OFFSET_LABEL, ROLE_LABEL } from './names.js';

/**
 * Pure readers of what the API server reports about a batch's Jobs and pods: the observed half
 * of the reconcile loop. Nothing here trusts the input to be well formed: objects may come from
 * a typed list call (dates as Date) or a raw watch event (dates as strings), and a missing or
 * corrupt field gives "unknown", never a throw.
 */

export type { BatchObservation, PodAttempt } from '../../contracts/kubernetes-observation.js';

export const COMPLETION_INDEX_ANNOTATION = 'batch.kubernetes.io/job-completion-index';
export const FAILURE_COUNT_ANNOTATION = 'batch.kubernetes.io/job-index-failure-count';
export const IGNORED_FAILURE_COUNT_ANNOTATION = 'batch.kubernetes.io/job-index-ignored-failure-count';

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
/** Which attempt of its index a pod is: 1 + the failure-count and ignored-failure-count annotations. */
export function attemptNumberOf(pod: V1Pod): number {
  const annotations = pod.metadata?.annotations ?? {};
  const failures = nonNegativeInt(annotations[FAILURE_COUNT_ANNOTATION]) ?? 0;
  const ignored = nonNegativeInt(annotations[IGNORED_FAILURE_COUNT_ANNOTATION]) ?? 0;
  return 1 + failures + ignored;
}

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
  const status = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER);
  const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
  const disrupted = (pod.status?.conditions ?? []).some((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  const condition = disrupted ? 'Disruption' : pod.status?.reason === 'DeadlineExceeded' ? 'Timeout' : undefined;
  const message = nonEmpty(terminated?.message) ?? nonEmpty(pod.status?.message);

  const startedAt = millis(terminated?.startedAt) ?? millis(pod.status?.startTime);
  const finishedAt = millis(terminated?.finishedAt) ?? lastTransition(pod) ?? startedAt ?? millis(pod.metadata?.creationTimestamp) ?? 0;

  return {
    index: offset + completion,
    attempt: attemptNumberOf(pod),
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

/**
 * Reads a batch's Jobs and pods into one observation. A Job that failed with `FailedIndexes`
 * ran every index and some failed: those items are failed, but the batch goes on (later shards
 * still run); any other Job failure (pod failure policy, deadline, maxFailedIndexes) ends it.
 */
export function observeBatch(jobs: readonly V1Job[], pods: readonly V1Pod[]): BatchObservation {
  let completed: IndexRange[] = [];
  let failed: IndexRange[] = [];
  let jobFailed: BatchObservation['jobFailed'];
  for (const job of jobs) {
    const offset = offsetOf({ metadata: { labels: job.metadata?.labels } }) ?? 0;
    const completions = job.spec?.completions ?? undefined;
    const shift = (set: string | undefined) => parseIndexRanges(set ?? '', completions).map((r) => ({ first: r.first + offset, last: r.last + offset }));
    completed = mergeIndexRanges(completed, shift(job.status?.completedIndexes));
    failed = mergeIndexRanges(failed, shift(job.status?.failedIndexes));
    const finished = jobView(job, offset).finished;
    if (finished?.type === 'Failed' && finished.reason !== 'FailedIndexes' && !jobFailed) jobFailed = { reason: finished.reason, message: finished.message };
  }
  const running = new Map<number, number>();
  const attempts: PodAttempt[] = [];
  for (const pod of pods) {
    const offset = offsetOf(pod);
    if (offset === null) continue;
    if (!isPodActive(pod)) {
      const attempt = podAttempt(pod, offset);
      if (attempt) attempts.push(attempt);
      continue;
    }
    const completion = completionIndexOf(pod);
    if (completion !== null && !pod.metadata?.deletionTimestamp) running.set(offset + completion, attemptNumberOf(pod));
  }
  return { completed, failed, running, attempts, ...(jobFailed ? { jobFailed } : {}) };
}

/**
 * Why the job controller cannot create the pods of an unfinished, unsuspended Job with none
 * running: its latest `FailedCreate` event since the Job was created (the API server's message),
 * or null when nothing is wrong.
 */
export function podCreationFailure(jobs: readonly V1Job[], pods: readonly V1Pod[], failedCreates: readonly CoreV1Event[]): { reason: string; message: string } | null {
  if (failedCreates.length === 0) return null;
  for (const job of jobs) {
    const name = job.metadata?.name;
    if (jobView(job, 0).finished || job.spec?.suspend) continue;
    if (pods.some((p) => p.metadata?.labels?.['batch.kubernetes.io/job-name'] === name && isPodActive(p))) continue;
    const created = millis(job.metadata?.creationTimestamp) ?? 0;
    const latest = failedCreates
      .filter((e) => e.involvedObject?.kind === 'Job' && e.involvedObject.name === name && e.involvedObject.uid === job.metadata?.uid)
      .sort((a, b) => eventTime(b) - eventTime(a))[0];
    if (latest && eventTime(latest) >= created) {
      return { reason: 'FailedCreate', message: `Job ${name}: ${latest.message ?? 'the job controller could not create a pod'}` };
    }
  }
  return null;
}

function eventTime(e: CoreV1Event): number {
  return millis(e.lastTimestamp ?? (e.eventTime as Date | string | undefined) ?? e.metadata?.creationTimestamp) ?? 0;
}
