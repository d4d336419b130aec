import { describe, expect, it } from 'vitest';
import { AttemptAbort, BatchStoppedError, ItemTimeoutError, abortedAttempt, abortedByStop, abortedByTimeout } from '../../src/worker/item-abort.js';

/** The per-attempt abort the lease runner gives every item (src/worker/item-abort.ts). */
describe('AttemptAbort', () => {
  it('runs each listener once, in order, with the first reason; a removed one not at all', () => {
    const abort = new AttemptAbort();
    const seen: string[] = [];
    abort.onAbort(() => seen.push('a'));
    const removeB = abort.onAbort(() => seen.push('b'));
    abort.onAbort(() => seen.push('c'));
    removeB();
    removeB();
    const first = new ItemTimeoutError(5);
    abort.abort(first);
    abort.abort(new BatchStoppedError('b1'));
    expect(seen).toEqual(['a', 'c']);
    expect(abort.aborted).toBe(true);
    expect(abort.reason).toBe(first);
    // a listener added after the abort runs at once
    abort.onAbort(() => seen.push('late'));
    expect(seen).toEqual(['a', 'c', 'late']);
  });

  it('gives an AbortSignal that aborts with it, whether read before or after the abort', () => {
    const before = new AbortController();
    const early = new AttemptAbort();
    const signal = early.signal;
    signal.addEventListener('abort', () => before.abort());
    expect(signal.aborted).toBe(false);
    expect(early.signal).toBe(signal);
    const reason = new BatchStoppedError('b1');
    early.abort(reason);
    expect([signal.aborted, signal.reason, before.signal.aborted]).toEqual([true, reason, true]);

    const late = new AttemptAbort();
    late.abort(reason);
    expect([late.signal.aborted, late.signal.reason]).toEqual([true, reason]);
  });

  it.each([
    { reason: new ItemTimeoutError(10), byTimeout: true, byStop: false, condition: 'Timeout' },
    { reason: new BatchStoppedError('b1'), byTimeout: false, byStop: true, condition: undefined },
  ])('tells why it was aborted: $reason.name', ({ reason, byTimeout, byStop, condition }) => {
    const abort = new AttemptAbort();
    expect([abortedByTimeout(abort), abortedByStop(abort)]).toEqual([false, false]);
    abort.abort(reason);
    expect([abortedByTimeout(abort), abortedByStop(abort)]).toEqual([byTimeout, byStop]);
    // a signal read from it tells the same
    expect([abortedByTimeout(abort.signal), abortedByStop(abort.signal)]).toEqual([byTimeout, byStop]);
    expect(abortedAttempt(abort, 'why').condition).toBe(condition);
  });
});
