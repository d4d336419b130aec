import type { RetryPolicy, RetryRule } from './batch-spec.js';

/**
 * What to do after one failed attempt of an item: the batch's `retry` policy, mirroring the
 * Kubernetes `podFailurePolicy` (ordered rules, first match wins), `backoffLimitPerIndex` (a
 * retry budget per item) and `maxFailedIndexes` (a failure budget per batch). Pure: the caller
 * stores the decision and the counted-failure total.
 * Where the policy applies (queue reports, Kubernetes Jobs): docs/architecture.md#failure-policy.
 */

/** How an attempt ended, as observed by a worker or the Kubernetes runtime. */
export interface FailedAttempt {
  exitCode?: number;
  httpStatus?: number;
  condition?: 'Disruption' | 'Timeout';
  networkError?: boolean;
  /** From a `Retry-After` header or a RetryAfterError: the least time to wait before retrying. */
  retryAfterMs?: number;
}

/** The outcome for the item; `counted` says whether the attempt used up its retry budget. */
export type AttemptDecision =
  | { kind: 'retry'; counted: boolean; delayMs: number; reason: string }
  | { kind: 'failItem'; reason: string; message: string }
  | { kind: 'failBatch'; reason: string; message: string };

/** What the matching rule looked at, for the message: "exit code 42", "HTTP status 404", ... */
type Cause = string;

function matchRule(rule: RetryRule, attempt: FailedAttempt): Cause | undefined {
  if (rule.onExitCodes !== undefined) {
    const code = attempt.exitCode;
    // Kubernetes excludes exit code 0 from onExitCodes: a successful exit never explains a failure.
    if (code === undefined || code === 0) return undefined;
    const listed = rule.onExitCodes.values.includes(code);
    return listed === (rule.onExitCodes.operator === 'In') ? `exit code ${code}` : undefined;
  }
  if (rule.onHttpStatus !== undefined) {
    const status = attempt.httpStatus;
    if (status === undefined) return undefined;
    const listed = rule.onHttpStatus.values.includes(status);
    return listed === (rule.onHttpStatus.operator === 'In') ? `HTTP status ${status}` : undefined;
  }
  if (rule.onConditions !== undefined) {
    const condition = attempt.condition;
    if (condition === undefined) return undefined;
    return rule.onConditions.some((c) => c.type === condition) ? `condition ${condition}` : undefined;
  }
  return undefined;
}

function describe(attempt: FailedAttempt): Cause {
  if (attempt.exitCode !== undefined) return `exit code ${attempt.exitCode}`;
  if (attempt.httpStatus !== undefined) return `HTTP status ${attempt.httpStatus}`;
  if (attempt.condition !== undefined) return `condition ${attempt.condition}`;
  if (attempt.networkError === true) return 'a network error';
  return 'an unknown error';
}

/** A client error that retrying cannot fix; 408 and 429 are the server asking to try again. */
function isNonRetriableStatus(status: number | undefined): boolean {
  return status !== undefined && status >= 400 && status <= 499 && status !== 408 && status !== 429;
}

function retryAfter(attempt: FailedAttempt): number {
  const ms = attempt.retryAfterMs;
  // A garbage header must not produce a negative or NaN delay.
  return ms !== undefined && Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : 0;
}

/** Exponential backoff: backoffSeconds doubling per counted failure, capped at maxBackoffSeconds. */
function backoffMs(policy: RetryPolicy, countedFailuresBefore: number): number {
  if (policy.backoffSeconds === 0) return 0;
  // Past 2^64 the cap always wins; stopping there avoids Infinity arithmetic.
  const factor = 2 ** Math.min(countedFailuresBefore, 64);
  return Math.round(Math.min(policy.maxBackoffSeconds, policy.backoffSeconds * factor) * 1000);
}

/**
 * Decides the fate of an item after a failed attempt. Rules are checked in order and the first
 * match wins: FailBatch ends the batch, FailItem ends the item, Ignore retries without using the
 * retry budget (a lost worker, a drained node), and Count — or no match — applies the default:
 * an HTTP 4xx other than 408/429 fails the item unless a Count rule claimed it, otherwise the
 * failure is counted and retried with exponential backoff (never sooner than `retryAfterMs`)
 * until more than `backoffLimitPerItem` counted failures have happened.
 */
export function decideFailedAttempt(
  attempt: FailedAttempt,
  policy: RetryPolicy,
  countedFailuresBefore: number,
): AttemptDecision {
  if (!Number.isSafeInteger(countedFailuresBefore) || countedFailuresBefore < 0) {
    throw new RangeError(`countedFailuresBefore must be a non-negative integer, got ${countedFailuresBefore}`);
  }
  let countedByRule = false;
  for (const [i, rule] of policy.rules.entries()) {
    const cause = matchRule(rule, attempt);
    if (cause === undefined) continue;
    const message = `item failed with ${cause}, matching rule ${i} (${rule.action})`;
    if (rule.action === 'FailBatch') return { kind: 'failBatch', reason: 'FailBatchRule', message };
    if (rule.action === 'FailItem') return { kind: 'failItem', reason: 'FailItemRule', message };
    if (rule.action === 'Ignore') {
      return { kind: 'retry', counted: false, delayMs: retryAfter(attempt), reason: 'IgnoredByRule' };
    }
    countedByRule = true;
    break;
  }

  if (!countedByRule && isNonRetriableStatus(attempt.httpStatus)) {
    return {
      kind: 'failItem',
      reason: 'NonRetriableStatus',
      message: `item failed with HTTP status ${attempt.httpStatus}, which is not retriable`,
    };
  }
  const counted = countedFailuresBefore + 1;
  if (counted > policy.backoffLimitPerItem) {
    return {
      kind: 'failItem',
      reason: 'BackoffLimitExceeded',
      message: `item failed ${counted} counted times (last with ${describe(attempt)}), more than backoffLimitPerItem ${policy.backoffLimitPerItem}`,
    };
  }
  const delayMs = Math.max(retryAfter(attempt), backoffMs(policy, countedFailuresBefore));
  return { kind: 'retry', counted: true, delayMs, reason: 'Retrying' };
}

/**
 * Whether a batch has used up its failure budget, like `maxFailedIndexes`: true once
 * `failedItems` is strictly greater than `maxFailedItems`; never when no budget is set.
 */
export function exceedsMaxFailedItems(failedItems: number, policy: RetryPolicy): boolean {
  return policy.maxFailedItems !== undefined && failedItems > policy.maxFailedItems;
}
