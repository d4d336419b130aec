import type { Context, Next } from 'hono';
import { invalidUtf8Offset, pathAtEnd, scanJson, type JsonPath } from '../domain/json-scan.js';
import { pointerOf, problem, ProblemError, validationProblem, type FieldError } from './problems.js';

/**
 * Request bodies read whole (JSON specs, patches, dashboard forms): one bound on their bytes,
 * enforced while reading, and one set of JSON checks before any route sees the value — nesting
 * depth, UTF-8, numbers JSON.parse would turn into null, and `__proto__` keys a schema would drop.
 * Streamed bodies (NDJSON uploads, result PUTs) are read by their routes; an NDJSON line gets the
 * same JSON checks through {@link jsonTextProblem}. Limits: docs/api.md "Limits".
 */

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

export function isJsonMediaType(contentType: string | undefined): boolean {
  return JSON_MEDIA_TYPE.test((contentType ?? '').split(';')[0].trim());
}

/**
 * The body's bytes, never more than `maxBytes` of them in memory: a declared Content-Length over
 * the limit is refused before reading, and a body without one is refused at the first chunk past it.
 */
export async function readBoundedBody(req: Request, maxBytes: number, tooLarge: () => ProblemError): Promise<Uint8Array> {
  // The rest of the body is never read: the connection cannot carry another request after it.
  const refuse = () => new ProblemError(tooLarge().problem, { connection: 'close' });
  const declared = Number(req.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) throw refuse();
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      // Stop reading, without destroying the request: the server discards the rest (bounded in
      // bytes and time) so the client can still read the 413 instead of a reset connection.
      reader.releaseLock();
      throw refuse();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

export interface JsonTextOptions {
  maxDepth: number;
  /** prefixes every pointer: `/items/3` for an NDJSON item line */
  base?: string;
  /** NDJSON: the 1-based line, added to every field error */
  line?: number;
  /** where a `__proto__` key is kept as sent (item payloads are stored as text); refused elsewhere */
  protoKeyAllowed?: (path: JsonPath) => boolean;
}

/** A 422 for valid JSON text that is too deep, holds a number that overflows, or a `__proto__` key a schema would drop. */
export function jsonTextProblem(text: string, o: JsonTextOptions): ProblemError | undefined {
  const { refusal, protoKeys } = scanJson(text, o.maxDepth);
  const at = (path: JsonPath, detail: string): ProblemError => {
    const error: FieldError = { pointer: pointerOf(path, o.base ?? ''), detail, ...(o.line !== undefined ? { line: o.line } : {}) };
    return validationProblem([error], `${o.line !== undefined ? `line ${o.line}: ` : ''}${error.pointer || 'body'}: ${detail}`);
  };
  if (refusal) return at(refusal.path, refusal.reason === 'too-deep' ? `${refusal.detail} (FANOUT_MAX_JSON_DEPTH)` : refusal.detail);
  const dropped = protoKeys.find((path) => !o.protoKeyAllowed?.(path));
  if (dropped) return at(dropped, 'the key "__proto__" is not allowed here: it would be dropped, not stored');
  return undefined;
}

/** Inside an item payload (`…/items/<n>/…`), which is stored and handed to workers exactly as sent. */
export function insideItem(path: JsonPath): boolean {
  for (let k = 0; k + 2 < path.length; k++) if (path[k] === 'items' && typeof path[k + 1] === 'number') return true;
  return false;
}

/** The text of a JSON body, or the problem that refuses it (invalid UTF-8, malformed, or {@link jsonTextProblem}). */
export function checkedJsonBody(bytes: Uint8Array, maxDepth: number): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const offset = invalidUtf8Offset(bytes);
    const before = Buffer.from(bytes.subarray(0, Math.max(0, offset))).toString('utf8');
    const pointer = pointerOf(pathAtEnd(before));
    throw validationProblem([{ pointer, detail: `not valid UTF-8 (byte ${offset} of the body)` }], `${pointer || 'body'}: the body is not valid UTF-8 at byte ${offset}; send UTF-8 text`);
  }
  try {
    JSON.parse(text);
  } catch (err) {
    throw problem(400, 'malformed-json', 'Malformed JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
  const refused = jsonTextProblem(text, { maxDepth, protoKeyAllowed: insideItem });
  if (refused) throw refused;
  return text;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

export interface BoundedBodyOptions {
  maxBytes: number;
  maxJsonDepth: number;
  /** the 413's detail: names the limit and the setting that changes it */
  tooLargeDetail: string;
  /** requests whose route reads the body itself, as a stream */
  streamed?: (c: Context) => boolean;
}

/**
 * Middleware: reads a whole body within `maxBytes` (413 naming the limit), checks it when it is
 * JSON, and leaves it in Hono's body cache, where `c.req.json()`, `c.req.text()`, the route
 * validators and `parseBody` find it.
 */
export function boundedBody(o: BoundedBodyOptions) {
  return async (c: Context, next: Next) => {
    if (!BODY_METHODS.has(c.req.method) || o.streamed?.(c)) return next();
    const bytes = await readBoundedBody(c.req.raw, o.maxBytes, () => problem(413, 'too-large', 'Payload Too Large', o.tooLargeDetail));
    // Hono keeps promises in its body cache (its type says values): c.req.json() calls .then on them.
    const cache = c.req.bodyCache as { text?: Promise<string>; arrayBuffer?: Promise<ArrayBuffer> };
    if (isJsonMediaType(c.req.header('content-type')) && bytes.byteLength > 0) {
      cache.text = Promise.resolve(checkedJsonBody(bytes, o.maxJsonDepth));
    } else {
      cache.arrayBuffer = Promise.resolve(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
    return next();
  };
}
