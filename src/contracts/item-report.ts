import type { AttemptCondition } from '../domain/batch-spec.js';

/**
 * What a runtime reports about one item attempt, as the store records it (`applyReports` in
 * src/store/reports.ts). Workers send these inside queue reports (src/runtimes/queue/protocol.ts),
 * the dispatcher hands leases back with them, and the API records a result PUT with one. Kept
 * below the store and the runtimes so that neither imports the other for it.
 */

export type ItemOutcome = 'succeeded' | 'failed' | 'returned';

/** What happened to one item of a lease. */
export interface ItemReport {
  i: number;
  a: number;
  /**
   * `returned`: not run (worker stopping, batch halted), or aborted because its batch was stopped;
   * goes back to pending without an attempt (a stopped batch's item is already final: ignored)
   */
  outcome: ItemOutcome;
  /** inline result (stdout string, HTTP body, or a function's value) */
  result?: unknown;
  /** set when the result was streamed to the API blob store instead (PUT …/result) */
  resultBlob?: string;
  /** the size of that blob in bytes (usage and the storedResultBytes quota) */
  resultBytes?: number;
  exitCode?: number;
  httpStatus?: number;
  condition?: AttemptCondition;
  /** tail of stderr or the error message, at most a few KiB */
  error?: string;
  /** ms to wait before retrying (HTTP Retry-After) */
  retryAfterMs?: number;
  /** the task said retrying cannot help (a function threw `NonRetriableError`): fail the item now */
  nonRetriable?: boolean;
  /** the attempt failed before any HTTP answer (connection refused, reset, DNS): retriable */
  networkError?: boolean;
  startedAt?: number;
  finishedAt?: number;
  worker?: string;
}
