import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { JSON_DEPTH_CEILING, nestsDeeperThan } from '../domain/json-scan.js';
import { describeError } from './errors.js';
import { abortedAttempt, abortedByTimeout } from './item-abort.js';
import { ResultSpool } from './output-capture.js';
import { settleSpooledResult } from './result-upload.js';
import type { TaskContext, TaskResult } from './tasks.js';

/**
 * A URL task: POST the item itself as the JSON body to the operator's URL; the response body is
 * the result. Non-2xx answers fail the attempt with the status (the dispatcher maps 429/5xx to
 * retriable, other 4xx to FailItem); network errors fail it without a status. The batch token is
 * never sent to the URL.
 */

const ERROR_EXCERPT_BYTES = 512;

/** Runs one attempt of a URL task; resolves with its outcome, never rejects. */
export async function runUrlTask(url: string, ctx: TaskContext): Promise<TaskResult> {
  // aborted on the item's timeout or when its batch is stopped; covers reading the body too
  const { signal } = ctx.abort;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'fanout-batch-id': ctx.batchId,
        'fanout-item-index': String(ctx.index),
        'fanout-attempt': String(ctx.attempt),
      },
      body: JSON.stringify(ctx.input) ?? 'null',
      signal,
    });
  } catch (error) {
    return requestFailure(error, signal, ctx, 'request failed');
  }

  if (!response.ok) {
    const excerpt = await readExcerpt(response).catch(() => '');
    const failed: TaskResult = {
      outcome: 'failed',
      httpStatus: response.status,
      error: `HTTP ${response.status}${excerpt ? `: ${excerpt}` : ''}`,
    };
    if (response.status === 429 || response.status === 503) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      if (retryAfterMs !== undefined) failed.retryAfterMs = retryAfterMs;
    }
    return failed;
  }

  const spool = new ResultSpool(ctx.inlineResultLimit);
  try {
    const body = response.body ? Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>) : Readable.from([]);
    await pipeline(body, spool);
  } catch (error) {
    await spool.cleanup();
    return requestFailure(error, signal, ctx, 'reading the response failed');
  }
  const json = isJsonContentType(response.headers.get('content-type'));
  let result: TaskResult;
  try {
    result = await settleSpooledResult(spool, ctx, (data) => decodeBody(data, json), false);
  } catch (error) {
    if (error instanceof TooDeepAnswerError) return { outcome: 'failed', httpStatus: response.status, error: error.message };
    throw error;
  }
  return result.outcome === 'succeeded' ? { ...result, httpStatus: response.status } : result;
}

/**
 * Milliseconds from a `Retry-After` header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable; never negative.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (!/^[A-Za-z]{3},? /.test(text)) return undefined; // an HTTP date starts with a day name
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** `application/json` and any `application/*+json`. */
export function isJsonContentType(contentType: string | null): boolean {
  return contentType !== null && /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(contentType.trim());
}

/** A JSON answer too deep to report: serializing it for the dispatcher would overflow the stack. */
class TooDeepAnswerError extends Error {}

function decodeBody(data: Buffer, json: boolean): unknown {
  const text = data.toString('utf8');
  if (!json) return text;
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return text; // the server said JSON but sent something else: keep what it sent
  }
  if (nestsDeeperThan(text, JSON_DEPTH_CEILING)) {
    throw new TooDeepAnswerError(`the JSON answer is nested deeper than ${JSON_DEPTH_CEILING} levels, too deep to record as a result`);
  }
  return value;
}

function requestFailure(error: unknown, signal: AbortSignal, ctx: TaskContext, what: string): TaskResult {
  if (abortedByTimeout(signal)) return abortedAttempt(signal, `no complete answer within ${ctx.timeoutMs} ms`);
  if (signal.aborted) return abortedAttempt(signal, describeError(signal.reason));
  return { outcome: 'failed', networkError: true, error: `${what}: ${describeError(error)}` };
}

/** The first bytes of an error body, whitespace collapsed; the rest is not read. */
async function readExcerpt(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ERROR_EXCERPT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const text = Buffer.concat(chunks).subarray(0, ERROR_EXCERPT_BYTES).toString('utf8');
  return text.replace(/\s+/g, ' ').trim();
}
