import { describe, expect, test } from 'vitest';
import {
  checkTransition,
  deriveStatus,
  isFinalPhase,
  PHASES,
  statusChanged,
  TransitionError,
  type BatchDecisions,
  type Condition,
  type DerivedStatus,
  type ItemCounts,
  type Phase,
} from '../../src/domain/batch-status.js';

const T0 = '2025-01-01T00:00:00.000Z';
const NOW = '2025-01-01T00:05:00.000Z';

const counts = (c: Partial<ItemCounts>): ItemCounts => {
  const full = { pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, ...c };
  return { total: full.pending + full.running + full.succeeded + full.failed + full.cancelled, ...full, ...c };
};
const none: BatchDecisions = { halt: null, suspended: false };
const fresh: DerivedStatus = { phase: 'Pending', conditions: [], startTime: null, completionTime: null };
const cond = (type: string, status: 'True' | 'False', reason: string, message: string, lastTransitionTime = NOW): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime,
});

describe('isFinalPhase', () => {
  test.each<[Phase, boolean]>([
    ['Pending', false],
    ['Running', false],
    ['Suspended', false],
    ['Succeeded', true],
    ['Failed', true],
    ['Cancelled', true],
  ])('%s → %s', (p, want) => {
    expect(isFinalPhase(p)).toBe(want);
  });

  test('PHASES lists all six phases in order', () => {
    expect(PHASES).toEqual(['Pending', 'Running', 'Suspended', 'Succeeded', 'Failed', 'Cancelled']);
  });
});

describe('deriveStatus', () => {
  test.each<{ name: string; decisions?: BatchDecisions; counts: ItemCounts; previous?: DerivedStatus; want: DerivedStatus }>([
    {
      name: 'nothing started is Pending',
      counts: counts({ pending: 5 }),
      want: fresh,
    },
    {
      name: 'a running item makes it Running and sets startTime',
      counts: counts({ pending: 4, running: 1 }),
      want: { phase: 'Running', conditions: [], startTime: NOW, completionTime: null },
    },
    {
      name: 'startTime is kept once set',
      counts: counts({ pending: 3, running: 2 }),
      previous: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
      want: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
    },
    {
      name: 'Running with nothing in flight between releases stays Running',
      counts: counts({ pending: 3, succeeded: 2 }),
      previous: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
      want: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
    },
    {
      name: 'a finished item without running ones is Running',
      counts: counts({ pending: 3, succeeded: 1 }),
      want: { phase: 'Running', conditions: [], startTime: NOW, completionTime: null },
    },
    {
      name: 'all succeeded is Succeeded with Complete',
      counts: counts({ succeeded: 5 }),
      previous: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
      want: { phase: 'Succeeded', conditions: [cond('Complete', 'True', 'Completed', '5 of 5 items succeeded')], startTime: T0, completionTime: NOW },
    },
    {
      name: 'Pending straight to Succeeded sets both times',
      counts: counts({ succeeded: 1 }),
      want: { phase: 'Succeeded', conditions: [cond('Complete', 'True', 'Completed', '1 of 1 items succeeded')], startTime: NOW, completionTime: NOW },
    },
    {
      name: 'any failed item makes it Failed',
      counts: counts({ succeeded: 3, failed: 2 }),
      previous: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
      want: { phase: 'Failed', conditions: [cond('Failed', 'True', 'ItemsFailed', '2 of 5 items failed')], startTime: T0, completionTime: NOW },
    },
    {
      name: 'a running item keeps it Running even with failures',
      counts: counts({ running: 1, failed: 4 }),
      previous: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
      want: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
    },
    {
      name: 'halt Failed wins over items still pending',
      decisions: { halt: { phase: 'Failed', reason: 'FailBatchRule', message: 'item failed with exit code 42, matching rule 0 (FailBatch)', at: T0 }, suspended: false },
      counts: counts({ pending: 3, running: 1, failed: 1 }),
      previous: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
      want: {
        phase: 'Failed',
        conditions: [cond('Failed', 'True', 'FailBatchRule', 'item failed with exit code 42, matching rule 0 (FailBatch)')],
        startTime: T0,
        completionTime: NOW,
      },
    },
    {
      name: 'halt Cancelled on a Pending batch has no startTime',
      decisions: { halt: { phase: 'Cancelled', reason: 'CancelRequested', message: 'cancelled by user', at: T0 }, suspended: false },
      counts: counts({ cancelled: 4 }),
      want: { phase: 'Cancelled', conditions: [cond('Cancelled', 'True', 'CancelRequested', 'cancelled by user')], startTime: null, completionTime: NOW },
    },
    {
      name: 'halt wins over suspension, and the Suspended condition is retired',
      decisions: { halt: { phase: 'Cancelled', reason: 'CancelRequested', message: 'cancelled by user', at: T0 }, suspended: true },
      counts: counts({ pending: 2, succeeded: 1 }),
      previous: { phase: 'Suspended', conditions: [cond('Suspended', 'True', 'BatchSuspended', 'batch is suspended', T0)], startTime: T0, completionTime: null },
      want: {
        phase: 'Cancelled',
        conditions: [
          cond('Suspended', 'False', 'BatchFinished', 'batch finished as Cancelled while suspended'),
          cond('Cancelled', 'True', 'CancelRequested', 'cancelled by user'),
        ],
        startTime: T0,
        completionTime: NOW,
      },
    },
    {
      name: 'suspended batch is Suspended',
      decisions: { halt: null, suspended: true },
      counts: counts({ pending: 5 }),
      want: { phase: 'Suspended', conditions: [cond('Suspended', 'True', 'BatchSuspended', 'batch is suspended')], startTime: null, completionTime: null },
    },
    {
      name: 'suspension wins over all items final',
      decisions: { halt: null, suspended: true },
      counts: counts({ succeeded: 5 }),
      previous: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
      want: { phase: 'Suspended', conditions: [cond('Suspended', 'True', 'BatchSuspended', 'batch is suspended')], startTime: T0, completionTime: null },
    },
    {
      name: 'still suspended keeps lastTransitionTime',
      decisions: { halt: null, suspended: true },
      counts: counts({ pending: 5 }),
      previous: { phase: 'Suspended', conditions: [cond('Suspended', 'True', 'BatchSuspended', 'batch is suspended', T0)], startTime: null, completionTime: null },
      want: { phase: 'Suspended', conditions: [cond('Suspended', 'True', 'BatchSuspended', 'batch is suspended', T0)], startTime: null, completionTime: null },
    },
    {
      name: 'resume turns Suspended False with BatchResumed',
      counts: counts({ pending: 3, succeeded: 2 }),
      previous: { phase: 'Suspended', conditions: [cond('Suspended', 'True', 'BatchSuspended', 'batch is suspended', T0)], startTime: T0, completionTime: null },
      want: { phase: 'Running', conditions: [cond('Suspended', 'False', 'BatchResumed', 'batch resumed')], startTime: T0, completionTime: null },
    },
    {
      name: 'resume before anything ran goes back to Pending',
      counts: counts({ pending: 3 }),
      previous: { phase: 'Suspended', conditions: [cond('Suspended', 'True', 'BatchSuspended', 'batch is suspended', T0)], startTime: null, completionTime: null },
      want: { phase: 'Pending', conditions: [cond('Suspended', 'False', 'BatchResumed', 'batch resumed')], startTime: null, completionTime: null },
    },
    {
      name: 'suspending again flips False back to True at now',
      decisions: { halt: null, suspended: true },
      counts: counts({ pending: 3 }),
      previous: { phase: 'Pending', conditions: [cond('Suspended', 'False', 'BatchResumed', 'batch resumed', T0)], startTime: null, completionTime: null },
      want: { phase: 'Suspended', conditions: [cond('Suspended', 'True', 'BatchSuspended', 'batch is suspended')], startTime: null, completionTime: null },
    },
    {
      name: 'a False Suspended condition is left alone while running',
      counts: counts({ running: 1 }),
      previous: { phase: 'Running', conditions: [cond('Suspended', 'False', 'BatchResumed', 'batch resumed', T0)], startTime: T0, completionTime: null },
      want: { phase: 'Running', conditions: [cond('Suspended', 'False', 'BatchResumed', 'batch resumed', T0)], startTime: T0, completionTime: null },
    },
    {
      name: 're-deriving a finished batch keeps completionTime and transition time',
      counts: counts({ succeeded: 5 }),
      previous: { phase: 'Succeeded', conditions: [cond('Complete', 'True', 'Completed', '5 of 5 items succeeded', T0)], startTime: T0, completionTime: T0 },
      want: { phase: 'Succeeded', conditions: [cond('Complete', 'True', 'Completed', '5 of 5 items succeeded', T0)], startTime: T0, completionTime: T0 },
    },
    {
      name: 'retry reopens a Failed batch: Failed turns False, completionTime cleared',
      counts: counts({ pending: 2, succeeded: 3 }),
      previous: { phase: 'Failed', conditions: [cond('Failed', 'True', 'ItemsFailed', '2 of 5 items failed', T0)], startTime: T0, completionTime: T0 },
      want: { phase: 'Running', conditions: [cond('Failed', 'False', 'BatchRetried', 'batch reopened by retry, now Running')], startTime: T0, completionTime: null },
    },
    {
      name: 'retried batch that succeeds adds Complete after the retired Failed',
      counts: counts({ succeeded: 5 }),
      previous: { phase: 'Running', conditions: [cond('Failed', 'False', 'BatchRetried', 'batch reopened by retry, now Running', T0)], startTime: T0, completionTime: null },
      want: {
        phase: 'Succeeded',
        conditions: [cond('Failed', 'False', 'BatchRetried', 'batch reopened by retry, now Running', T0), cond('Complete', 'True', 'Completed', '5 of 5 items succeeded')],
        startTime: T0,
        completionTime: NOW,
      },
    },
    {
      name: 'same condition with a new message keeps its transition time',
      counts: counts({ succeeded: 3, failed: 2 }),
      previous: { phase: 'Failed', conditions: [cond('Failed', 'True', 'ItemsFailed', '1 of 5 items failed', T0)], startTime: T0, completionTime: T0 },
      want: { phase: 'Failed', conditions: [cond('Failed', 'True', 'ItemsFailed', '2 of 5 items failed', T0)], startTime: T0, completionTime: T0 },
    },
    {
      name: 'foreign condition types are carried over',
      counts: counts({ running: 1 }),
      previous: { phase: 'Running', conditions: [cond('Custom', 'True', 'Mine', 'not yours', T0)], startTime: T0, completionTime: null },
      want: { phase: 'Running', conditions: [cond('Custom', 'True', 'Mine', 'not yours', T0)], startTime: T0, completionTime: null },
    },
    {
      name: 'cancelled items without halt and no failures is Succeeded',
      counts: counts({ succeeded: 3, cancelled: 2 }),
      previous: { phase: 'Running', conditions: [], startTime: T0, completionTime: null },
      want: { phase: 'Succeeded', conditions: [cond('Complete', 'True', 'Completed', '3 of 5 items succeeded')], startTime: T0, completionTime: NOW },
    },
  ])('$name', ({ decisions, counts: c, previous, want }) => {
    expect(deriveStatus({ decisions: decisions ?? none, counts: c, previous: previous ?? fresh, now: NOW })).toEqual(want);
  });

  test('deriving twice changes nothing (idempotent reconcile)', () => {
    const input = { decisions: none, counts: counts({ succeeded: 4, failed: 1 }), previous: fresh, now: T0 };
    const first = deriveStatus(input);
    const second = deriveStatus({ ...input, previous: first, now: NOW });
    expect(statusChanged(first, second)).toBe(false);
    expect(second.completionTime).toBe(T0);
  });

  test('does not mutate previous conditions', () => {
    const previous: DerivedStatus = { phase: 'Suspended', conditions: [cond('Suspended', 'True', 'BatchSuspended', 'batch is suspended', T0)], startTime: null, completionTime: null };
    deriveStatus({ decisions: none, counts: counts({ pending: 1 }), previous, now: NOW });
    expect(previous.conditions[0].status).toBe('True');
  });

  test.each([
    { name: 'negative count', c: { total: 1, pending: 2, running: -1, succeeded: 0, failed: 0, cancelled: 0 }, err: 'non-negative integers' },
    { name: 'fractional count', c: { total: 1.5, pending: 1.5, running: 0, succeeded: 0, failed: 0, cancelled: 0 }, err: 'non-negative integers' },
    { name: 'counts exceed total', c: { total: 2, pending: 1, running: 1, succeeded: 1, failed: 0, cancelled: 0 }, err: 'do not add up to total' },
    { name: 'counts below total', c: { total: 5, pending: 1, running: 0, succeeded: 0, failed: 0, cancelled: 0 }, err: 'do not add up to total' },
  ])('rejects corrupted counts: $name', ({ c, err }) => {
    expect(() => deriveStatus({ decisions: none, counts: c, previous: fresh, now: NOW })).toThrow(err);
  });
});

describe('statusChanged', () => {
  const a: DerivedStatus = { phase: 'Running', conditions: [cond('Suspended', 'False', 'BatchResumed', 'batch resumed', T0)], startTime: T0, completionTime: null };
  test.each<{ name: string; b: DerivedStatus; want: boolean }>([
    { name: 'identical copy', b: structuredClone(a), want: false },
    { name: 'phase', b: { ...a, phase: 'Pending' }, want: true },
    { name: 'startTime', b: { ...a, startTime: NOW }, want: true },
    { name: 'completionTime', b: { ...a, completionTime: NOW }, want: true },
    { name: 'extra condition', b: { ...a, conditions: [...a.conditions, cond('Complete', 'True', 'Completed', 'x')] }, want: true },
    { name: 'no conditions', b: { ...a, conditions: [] }, want: true },
    { name: 'condition type', b: { ...a, conditions: [{ ...a.conditions[0], type: 'Other' }] }, want: true },
    { name: 'condition status', b: { ...a, conditions: [{ ...a.conditions[0], status: 'True' }] }, want: true },
    { name: 'condition reason', b: { ...a, conditions: [{ ...a.conditions[0], reason: 'X' }] }, want: true },
    { name: 'condition message', b: { ...a, conditions: [{ ...a.conditions[0], message: 'x' }] }, want: true },
    { name: 'condition time', b: { ...a, conditions: [{ ...a.conditions[0], lastTransitionTime: NOW }] }, want: true },
  ])('$name', ({ b, want }) => {
    expect(statusChanged(a, b)).toBe(want);
    expect(statusChanged(b, a)).toBe(want);
  });
});

describe('checkTransition', () => {
  type Action = Parameters<typeof checkTransition>[0];
  test.each<{ name: string; action: Action; phase: Phase; failed?: number; err?: string }>([
    { name: 'cancel Pending', action: 'cancel', phase: 'Pending' },
    { name: 'cancel Running', action: 'cancel', phase: 'Running' },
    { name: 'cancel Suspended', action: 'cancel', phase: 'Suspended' },
    { name: 'cancel Succeeded', action: 'cancel', phase: 'Succeeded', err: 'cannot cancel a batch that is Succeeded: it has already finished' },
    { name: 'cancel Failed', action: 'cancel', phase: 'Failed', err: 'cannot cancel a batch that is Failed: it has already finished' },
    { name: 'cancel Cancelled', action: 'cancel', phase: 'Cancelled', err: 'cannot cancel a batch that is Cancelled: it has already finished' },
    { name: 'suspend Pending', action: 'suspend', phase: 'Pending' },
    { name: 'suspend Running', action: 'suspend', phase: 'Running' },
    { name: 'suspend Suspended', action: 'suspend', phase: 'Suspended', err: 'cannot suspend a batch that is Suspended' },
    { name: 'suspend Succeeded', action: 'suspend', phase: 'Succeeded', err: 'cannot suspend a batch that is Succeeded: it has already finished' },
    { name: 'resume Suspended', action: 'resume', phase: 'Suspended' },
    { name: 'resume Running', action: 'resume', phase: 'Running', err: 'cannot resume a batch that is Running: it is not suspended' },
    { name: 'resume Failed', action: 'resume', phase: 'Failed', err: 'cannot resume a batch that is Failed: it is not suspended' },
    { name: 'retry Failed with failures', action: 'retry', phase: 'Failed', failed: 2 },
    { name: 'retry Succeeded with failures', action: 'retry', phase: 'Succeeded', failed: 1 },
    { name: 'retry Failed without failures', action: 'retry', phase: 'Failed', failed: 0, err: 'cannot retry a batch that is Failed: it has no failed items' },
    { name: 'retry Succeeded without failures', action: 'retry', phase: 'Succeeded', failed: 0, err: 'cannot retry a batch that is Succeeded: it has no failed items' },
    { name: 'retry Cancelled', action: 'retry', phase: 'Cancelled', failed: 3, err: 'cannot retry a batch that is Cancelled: a cancelled batch cannot be re-run' },
    { name: 'retry Running', action: 'retry', phase: 'Running', failed: 3, err: 'cannot retry a batch that is Running: only finished batches can be retried' },
    { name: 'retry Suspended', action: 'retry', phase: 'Suspended', failed: 3, err: 'cannot retry a batch that is Suspended: only finished batches can be retried' },
    { name: 'retry with negative count', action: 'retry', phase: 'Failed', failed: -1, err: 'cannot retry a batch that is Failed: it has no failed items' },
  ])('$name', ({ action, phase, failed, err }) => {
    const run = () => checkTransition(action, phase, failed ?? 0);
    if (err === undefined) {
      expect(run).not.toThrow();
      return;
    }
    let caught: unknown;
    try {
      run();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(TransitionError);
    const te = caught as TransitionError;
    expect(te.message).toBe(err);
    expect(te.action).toBe(action);
    expect(te.phase).toBe(phase);
    expect(te.name).toBe('TransitionError');
  });
});
