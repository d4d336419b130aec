import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from './errors.js';

/**
 * Retrying a call to the Fanout API for as long as a time budget allows: a network error, a 5xx
 * or a 429 is tried again with exponential backoff (honouring `Retry-After`); any other answer is
 * final and returned to the caller, which decides what a 4xx means.
 */

/** What one try answered. */
export interface ApiAnswer {
  status: number;
  body: string;
  /** the `retry-after` header, if any */
  retryAfter?: string | null;
}

/** The call could not get a final answer within its budget; the message says why. */
export class ApiUnavailableError extends Error {
  override name = 'ApiUnavailableError';
}

export interface RetryOptions {
  /** total time tries may start in, from the first one; 0: one try */
  budgetMs: number;
  /** first backoff; doubled after each try up to `maxDelayMs` */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** told before each wait, e.g. to print a line */
  onRetry?: (reason: string, delayMs: number) => void;
  /** ends the tries (and a wait between two) at once, rejecting with the abort reason */
  signal?: AbortSignal;
}

/** Whether an answer is worth another try. */
export function isRetriableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** `Retry-After` in ms (seconds or an HTTP date), or undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Calls `send` until it answers with a final status or the budget is spent. */
export async function withApiRetry(what: string, send: () => Promise<ApiAnswer>, opts: RetryOptions): Promise<ApiAnswer> {
  const deadline = Date.now() + opts.budgetMs;
  const maxDelayMs = opts.maxDelayMs ?? 5000;
  let delayMs = opts.baseDelayMs ?? 250;
  for (let tries = 1; ; tries++) {
    opts.signal?.throwIfAborted();
    let reason: string;
    let wantedMs: number | undefined;
    try {
      const answer = await send();
      if (!isRetriableStatus(answer.status)) return answer;
      reason = `HTTP ${answer.status}${summary(answer.body)}`;
      wantedMs = retryAfterMs(answer.retryAfter);
    } catch (error) {
      reason = describeError(error);
    }
    const left = deadline - Date.now();
    // jitter, so the pods of one Job that all failed together do not come back together
    const waitMs = Math.min(wantedMs ?? Math.round(delayMs * (0.5 + Math.random() / 2)), Math.max(0, left));
    if (left <= 0 || waitMs >= left) {
      throw new ApiUnavailableError(`${what} failed after ${tries} ${tries === 1 ? 'try' : 'tries'}: ${reason}`);
    }
    opts.onRetry?.(reason, waitMs);
    await sleep(waitMs, undefined, { signal: opts.signal }).catch(() => opts.signal!.throwIfAborted());
    delayMs = Math.min(delayMs * 2, maxDelayMs);
  }
}

function summary(body: string): string {
  let text = body;
  try {
    const problem = JSON.parse(body) as { detail?: unknown; title?: unknown };
    if (typeof problem.detail === 'string') text = problem.detail;
    else if (typeof problem.title === 'string') text = problem.title;
  } catch {
    // not JSON
  }
  text = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return text ? `: ${text}` : '';
}

/** One line for a final answer that is not a success (no token in it: bodies never echo it). */
export function describeAnswer(answer: ApiAnswer): string {
  return `HTTP ${answer.status}${summary(answer.body)}`;
}
