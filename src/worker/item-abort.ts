import type { TaskResult } from './tasks.js';

/**
 * Why an item's attempt was cut short. The lease runner gives every running item one
 * {@link AttemptAbort} and aborts it with one of these reasons: its timeout passed, or its batch was
 * stopped (cancelled, failed, deleted). Tasks only listen to the signal; the reason tells them,
 * and the runner, which outcome to report.
 */

/** The item ran longer than the batch's `itemTimeoutSeconds`: a failed attempt (`Timeout`). */
export class ItemTimeoutError extends Error {
  override name = 'ItemTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
  }
}

/** The batch was stopped while the item ran: nothing it returns is recorded, it is `returned`. */
export class BatchStoppedError extends Error {
  override name = 'BatchStoppedError';
  constructor(readonly batchId: string) {
    super(`aborted: batch ${batchId} was stopped (cancelled, failed or deleted)`);
  }
}

/**
 * The worker's shutdown grace ran out while the item ran: it is handed back (`returned`, no
 * attempt spent) so that another worker runs it again.
 */
export class WorkerShutdownError extends Error {
  override name = 'WorkerShutdownError';
  constructor() {
    super('aborted: the worker is shutting down');
  }
}

/** What tells whether an attempt was aborted, and why: an {@link AttemptAbort} or an AbortSignal. */
export interface AbortState {
  readonly aborted: boolean;
  readonly reason: unknown;
}

/**
 * The abort of one attempt. The runner, the item's timeout, the {@link HaltWatch} and the worker's
 * shutdown abort it; tasks listen with `onAbort`, or take `signal` to hand to an API that wants
 * an AbortSignal (fetch, timers). Listening here is a push to an array: an AbortController and
 * its EventTarget listeners cost about 4 µs per item, a tenth of what a worker spends on a no-op
 * item, so the AbortController is made only when `signal` is first read.
 */
export class AttemptAbort implements AbortState {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Array<() => void> = [];
  private controller?: AbortController;

  /** Aborts with `reason` (the first one counts): `signal` aborts, then each listener runs once. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = [];
    for (const fn of listeners) fn();
  }

  /** An AbortSignal that aborts with this attempt (already aborted if it has). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** Calls `fn` once on abort, at once if it already happened; returns what removes it. */
  onAbort(fn: () => void): () => void {
    if (this.aborted) {
      fn();
      return () => {};
    }
    this.listeners.push(fn);
    return () => {
      const at = this.listeners.indexOf(fn);
      if (at >= 0) this.listeners.splice(at, 1);
    };
  }
}

/** True when the attempt was aborted by the item's timeout (and not by a stopped batch). */
export function abortedByTimeout(state: AbortState): boolean {
  return state.aborted && state.reason instanceof ItemTimeoutError;
}

/** True when the attempt was aborted because the item's batch was stopped or its worker shuts down. */
export function abortedByStop(state: AbortState): boolean {
  return state.aborted && (state.reason instanceof BatchStoppedError || state.reason instanceof WorkerShutdownError);
}

/**
 * Calls `fn` once when `signal` aborts, at once if it already has; returns the function that
 * removes the listener (items end far more often than they are aborted).
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => {};
  }
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

/**
 * The outcome of an attempt its signal cut short, `error` saying why: the `Timeout` condition
 * only for a timeout. A stopped batch's item is reported `returned` by the runner whatever this
 * says; a task need not tell the two apart beyond this.
 */
export function abortedAttempt(state: AbortState, error: string): TaskResult {
  return abortedByTimeout(state) ? { outcome: 'failed', condition: 'Timeout', error } : { outcome: 'failed', error };
}
