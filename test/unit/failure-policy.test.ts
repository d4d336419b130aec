import { describe, expect, test } from 'vitest';
import { retrySchema, type RetryPolicy } from '../../src/domain/batch-spec.js';
import { decideFailedAttempt, exceedsMaxFailedItems, type AttemptDecision, type FailedAttempt } from '../../src/domain/failure-policy.js';

// Built through the real schema, so the tests also pin that defaults and rule shapes fit.
const policy = (input: Record<string, unknown> = {}): RetryPolicy => retrySchema.parse(input);

const base = policy({ backoffLimitPerItem: 3, backoffSeconds: 1, maxBackoffSeconds: 300 });
const retry = (delayMs: number, counted = true, reason = counted ? 'Retrying' : 'IgnoredByRule'): AttemptDecision => ({
  kind: 'retry',
  counted,
  delayMs,
  reason,
});

const rulesPolicy = policy({
  backoffLimitPerItem: 3,
  rules: [
    { action: 'FailBatch', onExitCodes: { operator: 'In', values: [42] } },
    { action: 'Ignore', onConditions: [{ type: 'Disruption' }] },
    { action: 'FailItem', onExitCodes: { operator: 'In', values: [2, 3] } },
    { action: 'Count', onHttpStatus: { operator: 'In', values: [409] } },
    { action: 'FailItem', onHttpStatus: { operator: 'In', values: [500] } },
  ],
});

describe('decideFailedAttempt: rules', () => {
  test.each<{ name: string; attempt: FailedAttempt; p?: RetryPolicy; before?: number; want: AttemptDecision }>([
    {
      name: 'FailBatch on exit code names rule and code',
      attempt: { exitCode: 42 },
      want: { kind: 'failBatch', reason: 'FailBatchRule', message: 'item failed with exit code 42, matching rule 0 (FailBatch)' },
    },
    {
      name: 'FailBatch wins even with the retry budget used up',
      attempt: { exitCode: 42 },
      before: 99,
      want: { kind: 'failBatch', reason: 'FailBatchRule', message: 'item failed with exit code 42, matching rule 0 (FailBatch)' },
    },
    {
      name: 'Ignore does not count and has no delay',
      attempt: { condition: 'Disruption' },
      before: 3,
      want: retry(0, false),
    },
    {
      name: 'Ignore honours Retry-After',
      attempt: { condition: 'Disruption', retryAfterMs: 2500 },
      want: retry(2500, false),
    },
    {
      name: 'FailItem names the rule index',
      attempt: { exitCode: 3 },
      want: { kind: 'failItem', reason: 'FailItemRule', message: 'item failed with exit code 3, matching rule 2 (FailItem)' },
    },
    {
      name: 'first match wins: exit code 42 with a Disruption is FailBatch (rule 0 before rule 1)',
      attempt: { exitCode: 42, condition: 'Disruption' },
      want: { kind: 'failBatch', reason: 'FailBatchRule', message: 'item failed with exit code 42, matching rule 0 (FailBatch)' },
    },
    {
      name: 'first match wins: Disruption with exit code 3 is ignored (rule 1 before rule 2)',
      attempt: { exitCode: 3, condition: 'Disruption' },
      want: retry(0, false),
    },
    {
      name: 'Count makes a non-retriable 409 retriable',
      attempt: { httpStatus: 409 },
      want: retry(1000),
    },
    {
      name: 'Count stops at the first match: later FailItem is not reached',
      attempt: { httpStatus: 409 },
      p: policy({ rules: [{ action: 'Count', onHttpStatus: { operator: 'In', values: [409] } }, { action: 'FailItem', onHttpStatus: { operator: 'In', values: [409] } }] }),
      want: retry(1000),
    },
    {
      name: 'FailItem on a normally retriable 500',
      attempt: { httpStatus: 500 },
      want: { kind: 'failItem', reason: 'FailItemRule', message: 'item failed with HTTP status 500, matching rule 4 (FailItem)' },
    },
    {
      name: 'Timeout condition matches no rule: counted',
      attempt: { condition: 'Timeout' },
      want: retry(1000),
    },
    {
      name: 'NotIn exit codes matches an unlisted code',
      attempt: { exitCode: 7 },
      p: policy({ rules: [{ action: 'FailItem', onExitCodes: { operator: 'NotIn', values: [1] } }] }),
      want: { kind: 'failItem', reason: 'FailItemRule', message: 'item failed with exit code 7, matching rule 0 (FailItem)' },
    },
    {
      name: 'NotIn exit codes skips a listed code',
      attempt: { exitCode: 1 },
      p: policy({ rules: [{ action: 'FailItem', onExitCodes: { operator: 'NotIn', values: [1] } }] }),
      want: retry(1000),
    },
    {
      name: 'NotIn exit codes never matches exit code 0 (Kubernetes)',
      attempt: { exitCode: 0, condition: 'Timeout' },
      p: policy({ rules: [{ action: 'FailBatch', onExitCodes: { operator: 'NotIn', values: [1] } }] }),
      want: retry(1000),
    },
    {
      name: 'exit code rule ignores an attempt without exit code',
      attempt: { httpStatus: 503 },
      p: policy({ rules: [{ action: 'FailBatch', onExitCodes: { operator: 'NotIn', values: [1] } }] }),
      want: retry(1000),
    },
    {
      name: 'HTTP rule ignores an attempt without status',
      attempt: { exitCode: 1 },
      p: policy({ rules: [{ action: 'FailBatch', onHttpStatus: { operator: 'NotIn', values: [200] } }] }),
      want: retry(1000),
    },
    {
      name: 'NotIn HTTP status matches',
      attempt: { httpStatus: 502 },
      p: policy({ rules: [{ action: 'FailBatch', onHttpStatus: { operator: 'NotIn', values: [503] } }] }),
      want: { kind: 'failBatch', reason: 'FailBatchRule', message: 'item failed with HTTP status 502, matching rule 0 (FailBatch)' },
    },
    {
      name: 'condition rule with several types',
      attempt: { condition: 'Timeout' },
      p: policy({ rules: [{ action: 'FailBatch', onConditions: [{ type: 'Disruption' }, { type: 'Timeout' }] }] }),
      want: { kind: 'failBatch', reason: 'FailBatchRule', message: 'item failed with condition Timeout, matching rule 0 (FailBatch)' },
    },
    {
      name: 'condition rule ignores an attempt without condition',
      attempt: { networkError: true },
      p: policy({ rules: [{ action: 'FailBatch', onConditions: [{ type: 'Timeout' }] }] }),
      want: retry(1000),
    },
  ])('$name', ({ attempt, p, before, want }) => {
    expect(decideFailedAttempt(attempt, p ?? rulesPolicy, before ?? 0)).toEqual(want);
  });
});

describe('decideFailedAttempt: default handling', () => {
  test.each<{ name: string; attempt: FailedAttempt; p?: RetryPolicy; before?: number; want: AttemptDecision }>([
    { name: 'HTTP 404 fails the item', attempt: { httpStatus: 404 }, want: { kind: 'failItem', reason: 'NonRetriableStatus', message: 'item failed with HTTP status 404, which is not retriable' } },
    { name: 'HTTP 400 fails the item', attempt: { httpStatus: 400 }, want: { kind: 'failItem', reason: 'NonRetriableStatus', message: 'item failed with HTTP status 400, which is not retriable' } },
    { name: 'HTTP 499 fails the item', attempt: { httpStatus: 499 }, want: { kind: 'failItem', reason: 'NonRetriableStatus', message: 'item failed with HTTP status 499, which is not retriable' } },
    { name: 'HTTP 404 fails even with budget left and no rules', attempt: { httpStatus: 404 }, before: 0, want: { kind: 'failItem', reason: 'NonRetriableStatus', message: 'item failed with HTTP status 404, which is not retriable' } },
    { name: 'HTTP 408 is retried', attempt: { httpStatus: 408 }, want: retry(1000) },
    { name: 'HTTP 429 is retried', attempt: { httpStatus: 429 }, want: retry(1000) },
    { name: 'HTTP 429 honours a longer Retry-After', attempt: { httpStatus: 429, retryAfterMs: 30_000 }, want: retry(30_000) },
    { name: 'HTTP 429 backoff wins over a shorter Retry-After', attempt: { httpStatus: 429, retryAfterMs: 500 }, before: 2, want: retry(4000) },
    { name: 'fractional Retry-After rounds up', attempt: { httpStatus: 429, retryAfterMs: 1500.2 }, want: retry(1501) },
    { name: 'negative Retry-After ignored', attempt: { httpStatus: 503, retryAfterMs: -5000 }, want: retry(1000) },
    { name: 'NaN Retry-After ignored', attempt: { httpStatus: 503, retryAfterMs: Number.NaN }, want: retry(1000) },
    { name: 'HTTP 503 is retried', attempt: { httpStatus: 503 }, want: retry(1000) },
    { name: 'HTTP 500 is retried', attempt: { httpStatus: 500 }, p: base, want: retry(1000) },
    { name: 'HTTP 399 is retried', attempt: { httpStatus: 399 }, want: retry(1000) },
    { name: 'network error is retried', attempt: { networkError: true }, want: retry(1000) },
    { name: 'empty attempt is retried', attempt: {}, want: retry(1000) },
    { name: 'exit code 1 is retried', attempt: { exitCode: 1 }, want: retry(1000) },
    { name: 'backoff doubles: second failure', attempt: { exitCode: 1 }, before: 1, want: retry(2000) },
    { name: 'backoff doubles: third failure', attempt: { exitCode: 1 }, before: 2, want: retry(4000) },
    {
      name: 'backoff is capped',
      attempt: { exitCode: 1 },
      p: policy({ backoffLimitPerItem: 100, backoffSeconds: 10, maxBackoffSeconds: 60 }),
      before: 3,
      want: retry(60_000),
    },
    {
      name: 'backoff cap survives huge counts without overflow',
      attempt: { exitCode: 1 },
      p: policy({ backoffLimitPerItem: 100, backoffSeconds: 1, maxBackoffSeconds: 300 }),
      before: 99,
      want: retry(300_000),
    },
    {
      name: 'zero backoff stays zero at huge counts',
      attempt: { exitCode: 1 },
      p: policy({ backoffLimitPerItem: 100, backoffSeconds: 0 }),
      before: 99,
      want: retry(0),
    },
    {
      name: 'fractional backoff seconds',
      attempt: { exitCode: 1 },
      p: policy({ backoffSeconds: 0.25 }),
      before: 1,
      want: retry(500),
    },
    { name: 'last allowed retry', attempt: { exitCode: 1 }, before: 2, p: policy({ backoffLimitPerItem: 3, backoffSeconds: 1 }), want: retry(4000) },
    {
      name: 'backoff limit exceeded',
      attempt: { exitCode: 1 },
      before: 3,
      want: { kind: 'failItem', reason: 'BackoffLimitExceeded', message: 'item failed 4 counted times (last with exit code 1), more than backoffLimitPerItem 3' },
    },
    {
      name: 'backoff limit 0 fails on the first counted failure',
      attempt: { httpStatus: 503 },
      p: policy({ backoffLimitPerItem: 0 }),
      want: { kind: 'failItem', reason: 'BackoffLimitExceeded', message: 'item failed 1 counted times (last with HTTP status 503), more than backoffLimitPerItem 0' },
    },
    {
      name: 'backoff limit message for a network error',
      attempt: { networkError: true },
      before: 3,
      want: { kind: 'failItem', reason: 'BackoffLimitExceeded', message: 'item failed 4 counted times (last with a network error), more than backoffLimitPerItem 3' },
    },
    {
      name: 'Count rule still respects the backoff limit',
      attempt: { httpStatus: 409 },
      p: rulesPolicy,
      before: 3,
      want: { kind: 'failItem', reason: 'BackoffLimitExceeded', message: 'item failed 4 counted times (last with HTTP status 409), more than backoffLimitPerItem 3' },
    },
    { name: 'Ignore still retries past the backoff limit', attempt: { condition: 'Disruption' }, p: rulesPolicy, before: 50, want: retry(0, false) },
  ])('$name', ({ attempt, p, before, want }) => {
    expect(decideFailedAttempt(attempt, p ?? base, before ?? 0)).toEqual(want);
  });

  test.each([-1, 1.5, Number.NaN])('rejects countedFailuresBefore %s', (before) => {
    expect(() => decideFailedAttempt({}, base, before)).toThrow(RangeError);
  });
});

describe('exceedsMaxFailedItems', () => {
  test.each([
    { name: 'no budget set', failed: 1_000_000, p: policy({}), want: false },
    { name: 'below budget', failed: 1, p: policy({ maxFailedItems: 2 }), want: false },
    { name: 'at budget', failed: 2, p: policy({ maxFailedItems: 2 }), want: false },
    { name: 'above budget', failed: 3, p: policy({ maxFailedItems: 2 }), want: true },
    { name: 'zero budget, none failed', failed: 0, p: policy({ maxFailedItems: 0 }), want: false },
    { name: 'zero budget, one failed', failed: 1, p: policy({ maxFailedItems: 0 }), want: true },
  ])('$name', ({ failed, p, want }) => {
    expect(exceedsMaxFailedItems(failed, p)).toBe(want);
  });
});
