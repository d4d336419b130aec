import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ZodError, type core } from 'zod';
import { TransitionError } from '../domain/batch-status.js';
import { LabelSelectorError } from '../domain/label-selector.js';
import { TemplateError } from '../domain/template.js';
import { NotFoundError } from '../store/batch-actions.js';
import { StoreUnavailableError } from '../store/store.js';
import { BlobStoreUnavailableError } from '../blobs/blob-store.js';
import { QuotaExceededError, RATE_WINDOW_MS } from '../store/quotas.js';

/**
 * RFC 9457 problem details. Every error the API answers goes through {@link toProblem}, the one
 * place where domain, validation and storage errors become HTTP statuses.
 */
export interface FieldError {
  pointer: string;
  detail: string;
  /** NDJSON uploads: the 1-based line the error is on */
  line?: number;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
  [extra: string]: unknown;
}

/** An error that already knows its problem document. */
export class ProblemError extends Error {
  constructor(
    readonly problem: Problem,
    readonly headers: Record<string, string> = {},
  ) {
    super(problem.detail);
  }
}

const TYPE_BASE = 'https://fanout.dev/problems/';

export function problem(status: number, slug: string, title: string, detail: string, extra: Partial<Problem> = {}): ProblemError {
  return new ProblemError({ type: TYPE_BASE + slug, title, status, detail, ...extra });
}

export const notFound = (what: string) => problem(404, 'not-found', 'Not Found', `${what} not found`);

/** Seconds a client waits before trying again while the database cannot be reached. */
export const STORE_RETRY_AFTER_SECONDS = 2;

/** The database cannot be reached right now: nothing was changed, the request can be sent again. */
export const storeUnavailable = () =>
  new ProblemError(
    {
      type: TYPE_BASE + 'service-unavailable',
      title: 'Service Unavailable',
      status: 503,
      detail: `the database cannot be reached right now; retry the request in ${STORE_RETRY_AFTER_SECONDS} seconds`,
    },
    { 'retry-after': String(STORE_RETRY_AFTER_SECONDS) },
  );

/** The object storage for large results cannot be reached: the result was not stored; send it again. */
export const blobStoreUnavailable = () =>
  new ProblemError(
    {
      type: TYPE_BASE + 'service-unavailable',
      title: 'Service Unavailable',
      status: 503,
      detail: `the object storage for large results cannot be reached right now; nothing was stored, retry the request in ${STORE_RETRY_AFTER_SECONDS} seconds`,
    },
    { 'retry-after': String(STORE_RETRY_AFTER_SECONDS) },
  );

/** A JSON pointer (RFC 6901) from a validation path. */
export function pointerOf(path: readonly PropertyKey[], base = ''): string {
  return base + path.map((p) => '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** Flattens zod issues into field errors; unknown keys get one error each. */
export function fieldErrors(issues: readonly core.$ZodIssue[], base = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ pointer: pointerOf([...issue.path, key], base), detail: `unknown field ${JSON.stringify(key)}` });
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      out.push(...fieldErrors(issue.errors[0], base));
    } else {
      out.push({ pointer: pointerOf(issue.path, base), detail: issue.message });
    }
  }
  return out;
}

export function validationProblem(errors: FieldError[], detail?: string): ProblemError {
  const first = errors[0];
  return problem(422, 'validation', 'Invalid request', detail ?? (first ? `${first.pointer || 'body'}: ${first.detail}` : 'the request is invalid'), { errors });
}

/** Problem type slug and title for statuses that Hono middleware and validators throw. */
const HTTP_PROBLEMS: Record<number, [string, string]> = {
  400: ['bad-request', 'Bad Request'],
  401: ['unauthorized', 'Unauthorized'],
  413: ['too-large', 'Payload Too Large'],
  415: ['unsupported-media-type', 'Unsupported Media Type'],
};

/** Maps anything thrown in a handler to a problem document. */
export function toProblem(err: unknown): ProblemError {
  if (err instanceof ProblemError) return err;
  if (err instanceof ZodError) return validationProblem(fieldErrors(err.issues));
  if (err instanceof StoreUnavailableError) return storeUnavailable();
  if (err instanceof BlobStoreUnavailableError) return blobStoreUnavailable();
  if (err instanceof QuotaExceededError) return quotaProblem(err);
  if (err instanceof NotFoundError) return problem(404, 'not-found', 'Not Found', err.message);
  if (err instanceof TransitionError) return problem(409, 'conflict', 'Conflict', err.message);
  if (err instanceof LabelSelectorError) {
    return problem(400, 'bad-label-selector', 'Invalid label selector', err.message, { errors: [{ pointer: '/labelSelector', detail: err.message }] });
  }
  if (err instanceof TemplateError) return validationProblem([{ pointer: '/template', detail: err.message }]);
  if (err instanceof HTTPException) {
    const headers: Record<string, string> = {};
    err.getResponse().headers.forEach((v, k) => (headers[k] = v));
    delete headers['content-type'];
    const known = err.status === 400 && /^Malformed JSON/.test(err.message) ? (['malformed-json', 'Malformed JSON'] as const) : HTTP_PROBLEMS[err.status];
    const title = known?.[1] ?? 'Error';
    return new ProblemError({ type: TYPE_BASE + (known?.[0] ?? 'http'), title, status: err.status, detail: err.message || title }, headers);
  }
  return problem(500, 'internal', 'Internal Server Error', 'an unexpected error occurred; see the server log with this request id');
}

/**
 * A submission over a quota. A rate quota that waiting can satisfy: 429 with Retry-After and the
 * RateLimit-Policy and RateLimit fields of draft-ietf-httpapi-ratelimit-headers-10 (one policy per
 * rate quota the tenant has, named after it; RateLimit for the one exceeded). Anything else
 * (storage, or a single submission larger than a whole window): 403. Both name the quota.
 */
function quotaProblem(err: QuotaExceededError): ProblemError {
  const facts = { quota: err.quota, limit: err.limit, used: err.used, requested: err.requested };
  if (err.retryAfterSeconds === null) {
    const detail =
      err.quota === 'batchesPerMinute' || err.quota === 'itemsPerMinute'
        ? `this request needs ${err.requested} of the ${err.quota} quota (${err.limit} a minute): it can never pass; split it`
        : `${err.quota} quota exceeded: ${err.used} in use of ${err.limit}${err.requested > 0 ? `, this request adds ${err.requested}` : ''}; delete batches to free it`;
    return problem(403, 'quota-exceeded', 'Quota exceeded', detail, facts);
  }
  const windowSeconds = RATE_WINDOW_MS / 1000;
  const policies = (['batchesPerMinute', 'itemsPerMinute'] as const)
    .filter((name) => err.quotas[name] !== null)
    .map((name) => `"${name}";q=${err.quotas[name]};w=${windowSeconds}`)
    .join(', ');
  return new ProblemError(
    {
      type: TYPE_BASE + 'rate-quota-exceeded',
      title: 'Too Many Requests',
      status: 429,
      detail: `${err.quota} quota exceeded: ${err.used} used of ${err.limit} this minute, this request needs ${err.requested}; retry in ${err.retryAfterSeconds} seconds`,
      ...facts,
    },
    {
      'retry-after': String(err.retryAfterSeconds),
      'ratelimit-policy': policies,
      ratelimit: `"${err.quota}";r=${Math.max(0, err.limit - err.used)};t=${err.retryAfterSeconds}`,
    },
  );
}

export function respondProblem(c: Context, err: ProblemError): Response {
  const body = JSON.stringify({ ...err.problem, instance: c.req.path });
  return new Response(body, {
    status: err.problem.status,
    headers: { 'content-type': 'application/problem+json', ...err.headers, 'x-request-id': c.get('requestId') ?? '' },
  });
}

/**
 * For routes whose JSON body is required: a request without one (no Content-Type) is refused
 * with 415 instead of being read as `{}`, which the validator would otherwise accept. An empty
 * body sent as JSON is malformed JSON (400) in the validator. Methods other than `methods` pass.
 */
export function requireJsonBody(methods: readonly string[]): MiddlewareHandler {
  return async (c, next) => {
    if (methods.includes(c.req.method) && !c.req.header('content-type')) {
      throw problem(415, 'unsupported-media-type', 'Unsupported Media Type', `${c.req.method} ${c.req.path} needs a JSON body: send Content-Type: application/json`);
    }
    await next();
  };
}
