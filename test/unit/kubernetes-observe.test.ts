import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, test } from 'vitest';
import { BATCH_LABEL, ITEM_LABEL, OFFSET_LABEL, ROLE_LABEL } from '../../src/runtimes/kubernetes/manifests.js';
import { completionIndexOf, isPodActive, jobView, observeBatch, offsetOf, podAttempt, podCreationFailure, type PodAttempt } from '../../src/runtimes/kubernetes/observe.js';

const T0 = '2025-01-01T00:00:00Z';
const T1 = '2025-01-01T00:00:05Z';
const T2 = '2025-01-01T00:00:09Z';
const ms = (t: string) => Date.parse(t);

/** A pod as the job controller and kubelet leave it; `over` replaces top-level parts. */
function pod(o: {
  phase?: string;
  index?: string;
  failures?: string;
  ignored?: string;
  terminated?: Record<string, unknown>;
  container?: string;
  conditions?: Array<Record<string, unknown>>;
  reason?: string;
  message?: string;
  labels?: Record<string, string>;
}): V1Pod {
  const annotations: Record<string, string> = {};
  if (o.index !== undefined) annotations['batch.kubernetes.io/job-completion-index'] = o.index;
  if (o.failures !== undefined) annotations['batch.kubernetes.io/job-index-failure-count'] = o.failures;
  if (o.ignored !== undefined) annotations['batch.kubernetes.io/job-index-ignored-failure-count'] = o.ignored;
  return {
    metadata: { name: 'fanout-b1-0-3-x7k2p', annotations, labels: o.labels ?? {} },
    status: {
      phase: o.phase,
      startTime: T0 as unknown as Date,
      ...(o.reason !== undefined ? { reason: o.reason } : {}),
      ...(o.message !== undefined ? { message: o.message } : {}),
      ...(o.conditions !== undefined ? { conditions: o.conditions as never } : {}),
      ...(o.terminated !== undefined
        ? { containerStatuses: [{ name: o.container ?? 'main', image: 'busybox', imageID: '', ready: false, restartCount: 0, state: { terminated: o.terminated as never } }] }
        : {}),
    },
  };
}

describe('completionIndexOf', () => {
  test.each<{ annotation: string | undefined; want: number | null }>([
    { annotation: '0', want: 0 },
    { annotation: '99999', want: 99999 },
    { annotation: undefined, want: null },
    { annotation: '', want: null },
    { annotation: '-1', want: null },
    { annotation: '1.5', want: null },
    { annotation: 'x', want: null },
    { annotation: '99999999999999999999', want: null },
  ])('$annotation → $want', ({ annotation, want }) => {
    expect(completionIndexOf(pod({ index: annotation }))).toBe(want);
  });
});

describe('isPodActive', () => {
  test.each<{ phase: string | undefined; want: boolean }>([
    { phase: 'Pending', want: true },
    { phase: 'Running', want: true },
    { phase: 'Unknown', want: true },
    { phase: undefined, want: true },
    { phase: 'Succeeded', want: false },
    { phase: 'Failed', want: false },
  ])('$phase → $want', ({ phase, want }) => expect(isPodActive(pod({ phase }))).toBe(want));
});

describe('offsetOf', () => {
  test.each<{ name: string; labels: Record<string, string>; want: number | null }>([
    { name: 'an indexed-job pod: its shard offset', labels: { [BATCH_LABEL]: 'b1', [ROLE_LABEL]: 'indexed', [OFFSET_LABEL]: '200000' }, want: 200_000 },
    { name: 'a job-per-item pod: its item index', labels: { [BATCH_LABEL]: 'b1', [ROLE_LABEL]: 'item', [ITEM_LABEL]: '17' }, want: 17 },
    { name: 'a worker pod', labels: { [BATCH_LABEL]: 'b1', [ROLE_LABEL]: 'worker' }, want: null },
    { name: 'no role', labels: { [OFFSET_LABEL]: '3' }, want: null },
    { name: 'a corrupt offset', labels: { [ROLE_LABEL]: 'indexed', [OFFSET_LABEL]: 'x' }, want: null },
  ])('$name', ({ labels, want }) => expect(offsetOf(pod({ labels }))).toBe(want));
});

describe('podAttempt', () => {
  const exit = (exitCode: number, extra: Record<string, unknown> = {}) => ({ exitCode, startedAt: T1, finishedAt: T2, ...extra });

  test.each<{ name: string; pod: V1Pod; offset?: number; want: PodAttempt | null }>([
    { name: 'running: no attempt yet', pod: pod({ phase: 'Running', index: '3' }), want: null },
    { name: 'pending: no attempt yet', pod: pod({ phase: 'Pending', index: '3' }), want: null },
    { name: 'no completion index', pod: pod({ phase: 'Succeeded', terminated: exit(0) }), want: null },
    {
      name: 'first attempt succeeded, shifted by the offset',
      pod: pod({ phase: 'Succeeded', index: '3', failures: '0', terminated: exit(0, { reason: 'Completed' }) }),
      offset: 100_000,
      want: { index: 100_003, attempt: 1, podName: 'fanout-b1-0-3-x7k2p', outcome: 'succeeded', exitCode: 0, startedAt: ms(T1), finishedAt: ms(T2) },
    },
    {
      name: 'third attempt failed with exit code 42 and a termination message',
      pod: pod({ phase: 'Failed', index: '3', failures: '1', ignored: '1', terminated: exit(42, { reason: 'Error', message: 'boom\n' }) }),
      want: { index: 3, attempt: 3, podName: 'fanout-b1-0-3-x7k2p', outcome: 'failed', exitCode: 42, message: 'boom', startedAt: ms(T1), finishedAt: ms(T2) },
    },
    {
      name: 'evicted: Disruption, the pod message, no exit code',
      pod: pod({
        phase: 'Failed',
        index: '0',
        failures: '2',
        reason: 'Evicted',
        message: 'The node was low on resource: memory.',
        conditions: [
          { type: 'Ready', status: 'False', lastTransitionTime: T1 },
          { type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet', lastTransitionTime: T2 },
        ],
      }),
      want: { index: 0, attempt: 3, podName: 'fanout-b1-0-3-x7k2p', outcome: 'failed', condition: 'Disruption', message: 'The node was low on resource: memory.', startedAt: ms(T0), finishedAt: ms(T2) },
    },
    {
      name: 'a DisruptionTarget that is False is no disruption',
      pod: pod({ phase: 'Failed', index: '0', conditions: [{ type: 'DisruptionTarget', status: 'False' }], terminated: exit(1) }),
      want: { index: 0, attempt: 1, podName: 'fanout-b1-0-3-x7k2p', outcome: 'failed', exitCode: 1, startedAt: ms(T1), finishedAt: ms(T2) },
    },
    {
      name: 'past activeDeadlineSeconds: Timeout',
      pod: pod({ phase: 'Failed', index: '1', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline', terminated: exit(137) }),
      want: { index: 1, attempt: 1, podName: 'fanout-b1-0-3-x7k2p', outcome: 'failed', exitCode: 137, condition: 'Timeout', message: 'Pod was active on the node longer than the specified deadline', startedAt: ms(T1), finishedAt: ms(T2) },
    },
    {
      name: 'only the main container counts',
      pod: pod({ phase: 'Failed', index: '1', container: 'sidecar', terminated: exit(9) }),
      want: { index: 1, attempt: 1, podName: 'fanout-b1-0-3-x7k2p', outcome: 'failed', startedAt: ms(T0), finishedAt: ms(T0) },
    },
    {
      name: 'corrupt failure counts read as 0',
      pod: pod({ phase: 'Failed', index: '2', failures: 'many', ignored: '-1', terminated: exit(1) }),
      want: { index: 2, attempt: 1, podName: 'fanout-b1-0-3-x7k2p', outcome: 'failed', exitCode: 1, startedAt: ms(T1), finishedAt: ms(T2) },
    },
  ])('$name', ({ pod: p, offset, want }) => {
    expect(podAttempt(p, offset ?? 0)).toEqual(want);
  });

  test('dates as Date objects (a typed list) read the same as strings (a watch)', () => {
    const p = pod({ phase: 'Succeeded', index: '0', terminated: { exitCode: 0, startedAt: new Date(T1), finishedAt: new Date(T2) } });
    expect(podAttempt(p, 0)).toMatchObject({ startedAt: ms(T1), finishedAt: ms(T2) });
  });
});

describe('jobView', () => {
  const job = (status: V1Job['status'], completions = 10): V1Job => ({ spec: { completions, template: {} }, status });

  test.each<{ name: string; job: V1Job; offset?: number; want: unknown }>([
    { name: 'a new Job', job: job(undefined), want: { completed: [], failed: [], suspended: false, active: 0 } },
    {
      name: 'running, some indexes done',
      job: job({ active: 3, completedIndexes: '0,2-4', failedIndexes: '1' }),
      want: { completed: [0, 2, 3, 4], failed: [1], suspended: false, active: 3 },
    },
    {
      name: 'shifted by the shard offset',
      job: job({ completedIndexes: '0-2', failedIndexes: '9' }),
      offset: 200_000,
      want: { completed: [200_000, 200_001, 200_002], failed: [200_009], suspended: false, active: 0 },
    },
    {
      name: 'complete',
      job: job({ completedIndexes: '0-9', conditions: [{ type: 'SuccessCriteriaMet', status: 'True' }, { type: 'Complete', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' }] }),
      want: { completed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], failed: [], finished: { type: 'Complete', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' }, suspended: false, active: 0 },
    },
    {
      name: 'failed by the pod failure policy',
      job: job({
        completedIndexes: '0',
        failedIndexes: '0,1',
        conditions: [
          { type: 'FailureTarget', status: 'True', reason: 'PodFailurePolicy', message: 'Container main for pod default/x failed with exit code 42 matching FailJob rule at index 0' },
          { type: 'Failed', status: 'True', reason: 'PodFailurePolicy', message: 'Container main for pod default/x failed with exit code 42 matching FailJob rule at index 0' },
        ],
      }, 4),
      want: { completed: [0], failed: [0, 1], finished: { type: 'Failed', reason: 'PodFailurePolicy', message: 'Container main for pod default/x failed with exit code 42 matching FailJob rule at index 0' }, suspended: false, active: 0 },
    },
    {
      name: 'a condition that is not True does not finish it',
      job: job({ conditions: [{ type: 'Failed', status: 'False', reason: 'x' }, { type: 'Complete', status: 'Unknown' }] }),
      want: { completed: [], failed: [], suspended: false, active: 0 },
    },
    { name: 'suspended', job: job({ conditions: [{ type: 'Suspended', status: 'True', reason: 'JobSuspended', message: 'Job suspended' }] }), want: { completed: [], failed: [], suspended: true, active: 0 } },
    { name: 'resumed', job: job({ conditions: [{ type: 'Suspended', status: 'False', reason: 'JobResumed' }] }), want: { completed: [], failed: [], suspended: false, active: 0 } },
    {
      name: 'corrupt and out-of-range index sets are read tolerantly',
      job: job({ completedIndexes: '0,x,3-,5-2,8-12', failedIndexes: '20' }, 10),
      want: { completed: [0, 8, 9], failed: [], suspended: false, active: 0 },
    },
    { name: 'a reason-less condition gives empty strings', job: job({ conditions: [{ type: 'Failed', status: 'True' }] }), want: { completed: [], failed: [], finished: { type: 'Failed', reason: '', message: '' }, suspended: false, active: 0 } },
  ])('$name', ({ job: j, offset, want }) => {
    expect(jobView(j, offset ?? 0)).toEqual(want);
  });

  test('a full shard expands to 100,000 indexes', () => {
    const view = jobView(job({ completedIndexes: '0-99999' }, 100_000), 100_000);
    expect(view.completed).toHaveLength(100_000);
    expect(view.completed[0]).toBe(100_000);
    expect(view.completed[99_999]).toBe(199_999);
  });
});

describe('observeBatch (a batch’s Jobs and pods as one observation)', () => {
  const shard = (offset: number, status: Record<string, unknown>, conditions: Array<Record<string, unknown>> = []): V1Job => ({
    metadata: { name: `fanout-b1-${offset}`, labels: { [ROLE_LABEL]: 'indexed', [OFFSET_LABEL]: String(offset) } },
    spec: { completions: 3, template: {} },
    status: { ...status, conditions: conditions as never },
  });
  const indexedPod = (offset: number, o: Parameters<typeof pod>[0] & { deleting?: boolean }): V1Pod => {
    const p = pod({ ...o, labels: { [ROLE_LABEL]: 'indexed', [OFFSET_LABEL]: String(offset) } });
    if (o.deleting) p.metadata!.deletionTimestamp = new Date(T2);
    return p;
  };

  test('shifts every shard’s index sets by its offset and merges them', () => {
    const obs = observeBatch([shard(0, { completedIndexes: '0-2' }), shard(3, { completedIndexes: '0,2', failedIndexes: '1' })], []);
    expect(obs.completed).toEqual([{ first: 0, last: 3 }, { first: 5, last: 5 }]);
    expect(obs.failed).toEqual([{ first: 4, last: 4 }]);
    expect(obs.jobFailed).toBeUndefined();
  });

  test('a Job failed by its policy fails the batch; one with FailedIndexes only fails its items', () => {
    const failed = (reason: string) => [{ type: 'Failed', status: 'True', reason, message: `${reason} happened` }];
    expect(observeBatch([shard(0, { failedIndexes: '1' }, failed('FailedIndexes'))], []).jobFailed).toBeUndefined();
    expect(observeBatch([shard(0, {}, failed('PodFailurePolicy'))], []).jobFailed).toEqual({ reason: 'PodFailurePolicy', message: 'PodFailurePolicy happened' });
  });

  test('live pods are running items with their attempt; ended pods are attempts; deleting and foreign pods are neither', () => {
    const obs = observeBatch(
      [],
      [
        indexedPod(3, { phase: 'Running', index: '1', failures: '1', ignored: '1' }),
        indexedPod(3, { phase: 'Pending', index: '2', deleting: true }),
        indexedPod(0, { phase: 'Failed', index: '0', terminated: { exitCode: 7, startedAt: T0, finishedAt: T1 } }),
        pod({ phase: 'Running', index: '0', labels: { [ROLE_LABEL]: 'worker' } }),
      ],
    );
    expect([...obs.running]).toEqual([[4, 3]]);
    expect(obs.attempts).toEqual([expect.objectContaining({ index: 0, attempt: 1, outcome: 'failed', exitCode: 7 })]);
  });
});

describe('podCreationFailure', () => {
  const job = (o: { finished?: boolean; suspend?: boolean } = {}): V1Job => ({
    metadata: { name: 'fanout-b1-i1', uid: 'u1', creationTimestamp: new Date(T0) },
    spec: { suspend: o.suspend ?? false, template: {} },
    status: o.finished ? { conditions: [{ type: 'Complete', status: 'True' } as never] } : {},
  });
  const event = (o: { uid?: string; at?: string; message?: string } = {}) => ({
    metadata: { name: 'e' },
    involvedObject: { kind: 'Job', name: 'fanout-b1-i1', uid: o.uid ?? 'u1' },
    reason: 'FailedCreate',
    message: o.message ?? 'Pod "x" is invalid: spec.containers[0].image: must not have leading or trailing whitespace',
    lastTimestamp: new Date(o.at ?? T1),
  });

  test('names the Job and gives the API server’s message', () => {
    expect(podCreationFailure([job()], [], [event()])).toEqual({
      reason: 'FailedCreate',
      message: 'Job fanout-b1-i1: Pod "x" is invalid: spec.containers[0].image: must not have leading or trailing whitespace',
    });
  });

  test.each([
    ['no events', [job()], []],
    ['the Job finished', [job({ finished: true })], [event()]],
    ['the Job is suspended', [job({ suspend: true })], [event()]],
    ['an event of an older Job of that name', [job()], [event({ uid: 'u0' })]],
    ['an event from before the Job', [job()], [event({ at: '2024-12-31T23:59:00Z' })]],
  ])('is null when there is nothing wrong now: %s', (_what, jobs, events) => {
    expect(podCreationFailure(jobs as V1Job[], [], events as never)).toBeNull();
  });

  test('is null while a pod of the Job runs', () => {
    const running = pod({ phase: 'Running', index: '0' });
    running.metadata!.labels = { 'batch.kubernetes.io/job-name': 'fanout-b1-i1' };
    expect(podCreationFailure([job()], [running], [event()])).toBeNull();
  });
});
