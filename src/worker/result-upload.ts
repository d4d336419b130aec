import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { withApiRetry, type ApiAnswer } from './api-retry.js';
import { describeError } from './errors.js';
import type { ResultSpool } from './output-capture.js';
import type { TaskContext, TaskResult } from './tasks.js';

/**
 * Results larger than the inline limit never travel through Redis: the worker streams the spooled
 * file to `PUT {apiUrl}/v1/batches/{batchId}/items/{index}/result`, and the API records the attempt
 * as succeeded itself. The item is then left out of the worker's report (see protocol.ts).
 */

const ANSWER_LIMIT = 64 * 1024;
/** How long a refused result upload (503, 429, another 5xx, a network error) is sent again. */
const UPLOAD_RETRY_MS = 5 * 60_000;
const UPLOAD_IDLE_MS = 60_000;

/** The URL a worker PUTs a large result to. */
export function resultUrl(apiUrl: string, batchId: string, index: number): URL {
  const base = apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`;
  return new URL(`v1/batches/${encodeURIComponent(batchId)}/items/${index}/result`, base);
}

/**
 * Streams `length` bytes of the file at `path` to the API. Resolves with the API's `recorded`
 * flag (false: the attempt was stale, which is still final for this worker); throws on any failure.
 * Uses node:http rather than fetch: Node 20's fetch keeps every chunk of a streamed request body
 * until the request ends, which would hold the whole result in memory.
 */
export async function uploadResultFile(ctx: TaskContext, path: string, length: number): Promise<boolean> {
  const apiUrl = ctx.apiUrl;
  if (!apiUrl) throw new Error('no API URL configured for this worker');
  const put = async (): Promise<ApiAnswer> => {
    const answer = await putStream(resultUrl(apiUrl, ctx.batchId, ctx.index), () => fileBody(path, length), {
      authorization: `Bearer ${ctx.token}`,
      'fanout-attempt': String(ctx.attempt),
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(length),
    });
    const retryAfter = answer.headers['retry-after'];
    return { status: answer.status, body: answer.body, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter };
  };
  // The work is done and only its recording failed: an API that cannot reach its database answers
  // 503 with Retry-After, and failing the attempt for that would run the item again, or fail it
  // for good when it has no retries left. So the upload is sent again until UPLOAD_RETRY_MS runs
  // out or the attempt is aborted (timeout, batch stopped, worker shutdown).
  const { status, body } = await withApiRetry('result upload', put, {
    budgetMs: UPLOAD_RETRY_MS,
    signal: ctx.abort.signal,
    onRetry: (reason, ms) => ctx.logger.warn({ batchId: ctx.batchId, index: ctx.index, reason, retryInMs: ms }, 'result upload refused; retrying'),
  });
  if (status < 200 || status > 299) throw new Error(`HTTP ${status}: ${body.replace(/\s+/g, ' ').slice(0, 200)}`);
  try {
    return (JSON.parse(body) as { recorded?: unknown }).recorded === true;
  } catch {
    return false;
  }
}

/** The first `length` bytes of the file at `path`, as a request body. */
export function fileBody(path: string, length: number): Readable {
  return length > 0 ? createReadStream(path, { start: 0, end: length - 1 }) : Readable.from([]);
}

/**
 * PUTs the stream `open()` returns to `url`; resolves with the answer's status and (the first
 * 64 KiB of) its body and headers, rejects on a network error or a stalled upload.
 */
export function putStream(
  url: URL,
  open: () => Readable,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const request = send(url, { method: 'PUT', headers }, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        if (size < ANSWER_LIMIT) chunks.push(chunk);
        size += chunk.length;
      });
      response.on('error', reject);
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: response.headers }),
      );
    });
    request.setTimeout(UPLOAD_IDLE_MS, () => request.destroy(new Error(`upload stalled for ${UPLOAD_IDLE_MS} ms`)));
    request.on('error', reject);
    // an early answer (say 401 before the body is read) settles the promise first; the later
    // pipeline error is then ignored
    pipeline(open(), request).catch(reject);
  });
}

/**
 * Turns a finished spool of a successful attempt into its result: inline (decoded by `decode`)
 * when small, otherwise uploaded to the API. A text result loses one trailing newline either way.
 * Always removes the temp file.
 */
export async function settleSpooledResult(
  spool: ResultSpool,
  ctx: TaskContext,
  decode: (data: Buffer) => unknown,
  stripNewline: boolean,
): Promise<TaskResult> {
  try {
    const captured = spool.captured();
    if (captured.kind === 'inline') return { outcome: 'succeeded', result: decode(captured.data) };
    let length = captured.bytes;
    if (stripNewline && length > 0 && (await lastByte(captured.path, length)) === 0x0a) length--;
    try {
      const recorded = await uploadResultFile(ctx, captured.path, length);
      ctx.logger.debug({ batchId: ctx.batchId, index: ctx.index, bytes: length, recorded }, 'large result uploaded');
      return { outcome: 'succeeded', recordedByApi: true };
    } catch (error) {
      return {
        outcome: 'failed',
        error: `result of ${length} bytes exceeds the inline limit and could not be uploaded to the API: ${describeError(error)}`,
      };
    }
  } finally {
    await spool.cleanup();
  }
}

/** The byte at `length - 1` of the file at `path`. */
export async function lastByte(path: string, length: number): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(1);
    await handle.read(buffer, 0, 1, length - 1);
    return buffer[0];
  } finally {
    await handle.close();
  }
}
