import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Batch, BatchList, Item, ListQuery, Schedule, WebhookDelivery, WebhookEndpoint } from './api-types.js';

/**
 * The small HTTP client behind the `fanout` client commands. It speaks the public contract of
 * docs/api.md (base path `/v1`, JSON, problem+json errors) with `fetch`, and turns every failure
 * into one of two typed errors at this boundary: {@link ApiProblemError} when the API answered
 * with an error, {@link ServerUnreachableError} when no answer came at all.
 */

/** One `errors[]` entry of a validation problem: a JSON pointer into the request and what is wrong there. */
export interface ProblemFieldError {
  pointer: string;
  detail: string;
  /** NDJSON uploads: the 1-based line of the body the error is on */
  line?: number;
}

/** The API answered with an error status; carries the RFC 9457 problem fields. */
export class ApiProblemError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: ProblemFieldError[];

  constructor(problem: { status: number; type?: string; title: string; detail?: string; errors?: ProblemFieldError[] }) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.name = 'ApiProblemError';
    this.status = problem.status;
    this.type = problem.type ?? 'about:blank';
    this.title = problem.title;
    this.detail = problem.detail;
    this.errors = problem.errors ?? [];
  }
}

/** No HTTP answer: connection refused, unknown host, reset, timeout. */
export class ServerUnreachableError extends Error {
  readonly server: string;
  readonly code: string | undefined;

  constructor(server: string, reason: string, code?: string) {
    super(`cannot reach the Fanout API at ${server}: ${reason}`);
    this.name = 'ServerUnreachableError';
    this.server = server;
    this.code = code;
  }
}

export interface ClientOptions {
  /** base URL of the API, e.g. `http://127.0.0.1:8080` (a path prefix is kept) */
  server: string;
  /** sent as `Authorization: Bearer <apiKey>` when set */
  apiKey?: string;
}

/** Typed calls on the Fanout API; one instance per command run. */
export class FanoutClient {
  private readonly base: URL;

  constructor(private readonly options: ClientOptions) {
    let base: URL;
    try {
      base = new URL(options.server.endsWith('/') ? options.server : `${options.server}/`);
    } catch {
      throw new ServerUnreachableError(options.server, 'not a valid URL (expected e.g. http://127.0.0.1:8080)');
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new ServerUnreachableError(options.server, 'the server URL must start with http:// or https://');
    }
    this.base = base;
  }

  /** POST /v1/batches with a JSON spec; answers the stored batch. */
  async submitBatch(spec: unknown, idempotencyKey?: string): Promise<Batch> {
    const res = await this.request('POST', 'v1/batches', {
      body: JSON.stringify(spec),
      headers: { 'content-type': 'application/json', ...idempotencyHeader(idempotencyKey) },
    });
    return (await res.json()) as Batch;
  }

  /** POST /v1/batches streaming an NDJSON file (spec line, then one item per line) without reading it whole. */
  async submitBatchNdjson(path: string, idempotencyKey?: string): Promise<Batch> {
    const res = await this.request('POST', 'v1/batches', {
      body: Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>,
      duplex: 'half',
      headers: { 'content-type': 'application/x-ndjson', ...idempotencyHeader(idempotencyKey) },
    });
    return (await res.json()) as Batch;
  }

  async getBatch(id: string): Promise<Batch> {
    const res = await this.request('GET', `v1/batches/${encodeURIComponent(id)}`);
    return (await res.json()) as Batch;
  }

  async listBatches(query: ListQuery & { cursor?: string }): Promise<BatchList> {
    const params = new URLSearchParams();
    if (query.labelSelector) params.set('labelSelector', query.labelSelector);
    if (query.phase) params.set('phase', query.phase);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor) params.set('cursor', query.cursor);
    const qs = params.toString();
    const res = await this.request('GET', qs ? `v1/batches?${qs}` : 'v1/batches');
    return (await res.json()) as BatchList;
  }

  /** Every batch matching the query, following `nextCursor` page by page. */
  async *listAllBatches(query: ListQuery): AsyncGenerator<Batch> {
    const seen = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await this.listBatches({ ...query, cursor });
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
      // A server that hands back a cursor it already gave would loop forever.
      if (cursor !== undefined && seen.has(cursor)) break;
      if (cursor !== undefined) seen.add(cursor);
    } while (cursor !== undefined);
  }

  async getSchedule(id: string): Promise<Schedule> {
    const res = await this.request('GET', `v1/schedules/${encodeURIComponent(id)}`);
    return (await res.json()) as Schedule;
  }

  /** Every schedule matching the label selector, following `nextCursor` page by page. */
  async *listAllSchedules(labelSelector?: string): AsyncGenerator<Schedule> {
    yield* this.pages((cursor) => {
      const params = new URLSearchParams({ limit: '500' });
      if (labelSelector) params.set('labelSelector', labelSelector);
      if (cursor) params.set('cursor', cursor);
      return `v1/schedules?${params}`;
    });
  }

  /** Every item of a batch in index order (with `status`, only those), following `nextCursor`. */
  async *listAllItems(id: string, status?: string): AsyncGenerator<Item> {
    yield* this.pages((cursor) => {
      const params = new URLSearchParams({ limit: '1000' });
      if (status) params.set('status', status);
      if (cursor) params.set('cursor', cursor);
      return `v1/batches/${encodeURIComponent(id)}/items?${params}`;
    });
  }

  /** GET /v1/webhook-endpoints: the tenant's endpoints (one page: the API does not paginate them). */
  async listWebhookEndpoints(): Promise<WebhookEndpoint[]> {
    const res = await this.request('GET', 'v1/webhook-endpoints');
    return ((await res.json()) as { items: WebhookEndpoint[] }).items;
  }

  async getWebhookEndpoint(id: string): Promise<WebhookEndpoint> {
    const res = await this.request('GET', `v1/webhook-endpoints/${encodeURIComponent(id)}`);
    return (await res.json()) as WebhookEndpoint;
  }

  /** The newest deliveries (at most 500, the API's cap) of a batch's events or to one endpoint. */
  async listDeliveries(owner: { batch: string } | { endpoint: string }): Promise<WebhookDelivery[]> {
    const path = 'batch' in owner ? `v1/batches/${encodeURIComponent(owner.batch)}` : `v1/webhook-endpoints/${encodeURIComponent(owner.endpoint)}`;
    const res = await this.request('GET', `${path}/webhook-deliveries?limit=500`);
    return ((await res.json()) as { items: WebhookDelivery[] }).items;
  }

  /** Follows `nextCursor` from page to page; `path` builds a page's URL from the cursor. */
  private async *pages<T>(path: (cursor: string | undefined) => string): AsyncGenerator<T> {
    const seen = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = (await (await this.request('GET', path(cursor))).json()) as { items: T[]; nextCursor: string | null };
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
      // A server that hands back a cursor it already gave would loop forever.
      if (cursor !== undefined && seen.has(cursor)) break;
      if (cursor !== undefined) seen.add(cursor);
    } while (cursor !== undefined);
  }

  /** GET /v1/batches/{id}/events: the Server-Sent Events body, unread; throws unless 200. */
  async openEvents(id: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const res = await this.request('GET', `v1/batches/${encodeURIComponent(id)}/events`, { headers: { accept: 'text/event-stream' }, signal });
    if (!res.body) throw new ApiProblemError({ status: res.status, title: 'Empty response', detail: 'the events answer had no body' });
    return res.body;
  }

  /** GET /v1/batches/{id}/results: the NDJSON body, unread. */
  async openResults(id: string): Promise<ReadableStream<Uint8Array>> {
    const res = await this.request('GET', `v1/batches/${encodeURIComponent(id)}/results`, {
      headers: { accept: 'application/x-ndjson' },
    });
    if (!res.body) throw new ApiProblemError({ status: res.status, title: 'Empty response', detail: 'the results answer had no body' });
    return res.body;
  }

  async cancelBatch(id: string): Promise<Batch | undefined> {
    const res = await this.request('POST', `v1/batches/${encodeURIComponent(id)}/cancel`);
    return (await readJsonOrUndefined(res)) as Batch | undefined;
  }

  /** POST /v1/batches/{id}/retry: re-runs the failed items of a finished batch; answers the batch. */
  async retryBatch(id: string): Promise<Batch | undefined> {
    const res = await this.request('POST', `v1/batches/${encodeURIComponent(id)}/retry`);
    return (await readJsonOrUndefined(res)) as Batch | undefined;
  }

  /** GET /v1/batches/{id}/items/{index}: one item with its attempts. */
  async getItem(id: string, index: number): Promise<Item> {
    const res = await this.request('GET', `v1/batches/${encodeURIComponent(id)}/items/${index}`);
    return (await res.json()) as Item;
  }

  async deleteBatch(id: string): Promise<void> {
    const res = await this.request('DELETE', `v1/batches/${encodeURIComponent(id)}`);
    await res.body?.cancel();
  }

  /** DELETE /v1/batches?labelSelector=…; answers how many batches were deleted. */
  async deleteBatches(labelSelector: string): Promise<number> {
    const qs = new URLSearchParams({ labelSelector }).toString();
    const res = await this.request('DELETE', `v1/batches?${qs}`);
    const body = (await readJsonOrUndefined(res)) as { deleted?: unknown } | undefined;
    return typeof body?.deleted === 'number' ? body.deleted : 0;
  }

  private async request(method: string, path: string, init: StreamingRequestInit = {}): Promise<Response> {
    const url = new URL(path, this.base);
    const headers = new Headers(init.headers);
    if (!headers.has('accept')) headers.set('accept', 'application/json');
    if (this.options.apiKey) headers.set('authorization', `Bearer ${this.options.apiKey}`);
    let res: Response;
    try {
      res = await fetch(url, { ...init, method, headers });
    } catch (err) {
      throw toUnreachable(this.options.server, err);
    }
    if (!res.ok) throw await toProblem(res);
    return res;
  }
}

/** Node's fetch needs `duplex: 'half'` to send a stream body; @types/node 20 does not declare it. */
type StreamingRequestInit = RequestInit & { duplex?: 'half' };

function idempotencyHeader(key: string | undefined): Record<string, string> {
  return key ? { 'idempotency-key': key } : {};
}

async function readJsonOrUndefined(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the server running? set --server or FANOUT_SERVER)',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed unexpectedly',
};

/** fetch rejects with `TypeError('fetch failed')` and hides the socket error in `cause`. */
function toUnreachable(server: string, err: unknown): ServerUnreachableError {
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause !== undefined && !(cause as NodeJS.ErrnoException).code) {
    cause = cause.cause;
  }
  // Several addresses tried at once surface as an AggregateError of per-address errors.
  if (cause instanceof AggregateError && cause.errors.length > 0) cause = cause.errors[0];
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = (code && NETWORK_REASONS[code]) ?? (cause instanceof Error ? cause.message : String(cause));
  return new ServerUnreachableError(server, reason, code);
}

async function toProblem(res: Response): Promise<ApiProblemError> {
  const text = await res.text().catch(() => '');
  const fallbackTitle = res.statusText || `HTTP ${res.status}`;
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (body && typeof body === 'object' && typeof (body as { title?: unknown }).title === 'string') {
    const p = body as { type?: unknown; title: string; detail?: unknown; errors?: unknown };
    return new ApiProblemError({
      status: res.status,
      type: typeof p.type === 'string' ? p.type : undefined,
      title: p.title,
      detail: typeof p.detail === 'string' ? p.detail : undefined,
      errors: Array.isArray(p.errors) ? p.errors.filter(isFieldError) : undefined,
    });
  }
  // Not problem+json (a proxy page, a plain-text error): keep its first line as the detail.
  const firstLine = text.trim().split('\n', 1)[0]?.slice(0, 200);
  return new ApiProblemError({ status: res.status, title: fallbackTitle, detail: firstLine || `HTTP ${res.status}` });
}

function isFieldError(value: unknown): value is ProblemFieldError {
  return !!value && typeof value === 'object' && typeof (value as ProblemFieldError).detail === 'string';
}
