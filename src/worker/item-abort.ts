import type { TaskResult } from './tasks.js';

/**
 * Why an item's attempt was cut short. The lease runner gives every running item one
 * AbortController and aborts it with one of these reasons: its timeout passed, or its batch was
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

/** True when `signal` was aborted by the item's timeout (and not by a stopped batch). */
export function abortedByTimeout(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof ItemTimeoutError;
}

/** True when `signal` was aborted because the item's batch was stopped or its worker shuts down. */
export function abortedByStop(signal: AbortSignal): boolean {
  return signal.aborted && (signal.reason instanceof BatchStoppedError || signal.reason instanceof WorkerShutdownError);
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
export function abortedAttempt(signal: AbortSignal, error: string): TaskResult {
  return abortedByTimeout(signal) ? { outcome: 'failed', condition: 'Timeout', error } : { outcome: 'failed', error };
}
