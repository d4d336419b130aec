import createClient from 'openapi-fetch';
import { problemFromBody, problemFromResponse } from './errors.js';
import type { paths } from './generated/schema.js';
import { readLines } from './lines.js';
import { paginate } from './pages.js';
import type { Batch, BatchPhase, BatchSpec, Item, ItemStatus, ResultLine, Schedule, WebhookDelivery, WebhookEndpoint } from './types.js';
import { waitForBatch, type WaitOptions } from './wait.js';

export interface FanoutClientOptions {
  /** the API's base URL, e.g. `http://127.0.0.1:8080` (a path prefix is kept) */
  baseUrl: string;
  /** sent as `Authorization: Bearer <apiKey>`; leave out only for a server that takes no key */
  apiKey?: string;
  /** custom fetch (tests, proxies, error mapping); defaults to globalThis.fetch */
  fetch?: (input: Request) => Promise<Response>;
}

export interface ListBatchesOptions {
  labelSelector?: string;
  phase?: BatchPhase;
  /** page size asked of the server (1–500) */
  limit?: number;
}

/** Which deliveries to list: those of one batch's webhook, or those to one endpoint. */
export type DeliveryOwner = { batchId: string } | { endpointId: string };

/** An upload body: NDJSON text, its bytes, or a stream of them (sent as it is read). */
export type NdjsonBody = string | Uint8Array | Blob | ReadableStream<Uint8Array>;

/** Data of a result: the answer's body, or the problem it carried (thrown). */
function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.error !== undefined || !r.response.ok) throw problemFromBody(r.response, r.error);
  return r.data as T;
}

function idempotency(key: string | undefined): Record<string, string> {
  return key ? { 'idempotency-key': key } : {};
}

/**
 * A typed client for the Fanout API: a thin layer over openapi-fetch with the generated
 * `paths`, plus what plain request/response calls don't give: page iterators, waiting on a
 * batch (server-sent events, else polling), streamed NDJSON uploads and results, and problem
 * errors ({@link FanoutProblemError}) for every error answer.
 */
export function createFanoutClient(options: FanoutClientOptions) {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? ((input: Request) => globalThis.fetch(input));
  const auth: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  const api = createClient<paths>({ baseUrl, headers: { accept: 'application/json', ...auth }, fetch: doFetch });
  const path = (id: string) => ({ params: { path: { id } } });

  /** A request openapi-fetch does not fit (a streamed upload, a body read as it arrives); throws unless 2xx. */
  async function send(method: string, url: string, init: { headers: Record<string, string>; body?: NdjsonBody; signal?: AbortSignal }): Promise<Response> {
    // Node's fetch sends a stream body only with `duplex: 'half'` (not yet in the DOM types).
    const streamed = typeof ReadableStream !== 'undefined' && init.body instanceof ReadableStream;
    const requestInit: RequestInit & { duplex?: 'half' } = { method, headers: { ...auth, ...init.headers }, body: init.body as BodyInit | undefined, signal: init.signal };
    if (streamed) requestInit.duplex = 'half';
    const res = await doFetch(new Request(`${baseUrl}${url}`, requestInit));
    if (!res.ok) throw await problemFromResponse(res);
    return res;
  }

  const batchPath = (id: string, rest = '') => `/v1/batches/${encodeURIComponent(id)}${rest}`;

  async function getBatch(id: string, signal?: AbortSignal): Promise<Batch> {
    return unwrap(await api.GET('/v1/batches/{id}', { ...path(id), signal }));
  }

  /** GET /v1/batches/{id}/events: the text/event-stream body, unread (see parseEventStream). */
  async function openEvents(id: string, o: { signal?: AbortSignal } = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await send('GET', batchPath(id, '/events'), { headers: { accept: 'text/event-stream' }, signal: o.signal });
    if (!res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`GET ${batchPath(id, '/events')} did not answer an event stream`);
    }
    return res.body;
  }

  /** GET /v1/batches/{id}/results: the NDJSON body, unread, to copy or parse as it arrives. */
  async function openResults(id: string, o: { signal?: AbortSignal } = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await send('GET', batchPath(id, '/results'), { headers: { accept: 'application/x-ndjson' }, signal: o.signal });
    return res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  }

  async function action(which: 'cancel' | 'suspend' | 'resume' | 'retry', id: string): Promise<Batch> {
    return unwrap(await api.POST(`/v1/batches/{id}/${which}`, path(id))) as Batch;
  }

  return {
    /** The underlying openapi-fetch client, for endpoints this layer does not wrap. */
    api,

    /** POST /v1/batches; `idempotencyKey` makes a retried create return the same batch. */
    async createBatch(spec: BatchSpec, o: { idempotencyKey?: string } = {}): Promise<Batch> {
      return unwrap(await api.POST('/v1/batches', { body: spec, params: { header: idempotency(o.idempotencyKey) } }));
    },

    /** POST /v1/batches as NDJSON: the spec without items on the first line, then one item per line. */
    async createBatchFromNdjson(body: NdjsonBody, o: { idempotencyKey?: string } = {}): Promise<Batch> {
      const res = await send('POST', '/v1/batches', { body, headers: { 'content-type': 'application/x-ndjson', accept: 'application/json', ...idempotency(o.idempotencyKey) } });
      return (await res.json()) as Batch;
    },

    getBatch: (id: string) => getBatch(id),

    /** Every batch matching the filters, newest first, fetched a page at a time. */
    listBatches(o: ListBatchesOptions = {}): AsyncGenerator<Batch> {
      return paginate(async (cursor) => unwrap(await api.GET('/v1/batches', { params: { query: { ...o, cursor } } })));
    },

    /** DELETE /v1/batches/{id}: the batch, its items and results. */
    async deleteBatch(id: string): Promise<void> {
      unwrap(await api.DELETE('/v1/batches/{id}', path(id)));
    },

    /** DELETE /v1/batches?labelSelector=…; answers how many batches were deleted. */
    async deleteBatches(labelSelector: string): Promise<number> {
      return unwrap(await api.DELETE('/v1/batches', { params: { query: { labelSelector } } })).deleted;
    },

    /** Every item of a batch in index order (with `status`, only those), with its attempts. */
    listItems(id: string, o: { status?: ItemStatus; limit?: number } = {}): AsyncGenerator<Item> {
      return paginate(async (cursor) => unwrap(await api.GET('/v1/batches/{id}/items', { params: { path: { id }, query: { ...o, cursor } } })));
    },

    /** GET /v1/batches/{id}/items/{index}: one item with its attempts. */
    async getItem(id: string, index: number): Promise<Item> {
      return unwrap(await api.GET('/v1/batches/{id}/items/{index}', { params: { path: { id, index } } }));
    },

    /** Resolves with the batch once it is final; see {@link WaitOptions}. */
    waitForBatch: (id: string, o: WaitOptions = {}) => waitForBatch({ getBatch, openEvents }, id, o),

    openEvents,
    openResults,

    /** The results, one line per item in index order, parsed as the body streams in. */
    async *results(id: string, o: { signal?: AbortSignal } = {}): AsyncGenerator<ResultLine> {
      for await (const line of readLines(await openResults(id, o))) {
        if (line.trim() !== '') yield JSON.parse(line) as ResultLine;
      }
    },

    cancel: (id: string) => action('cancel', id),
    suspend: (id: string) => action('suspend', id),
    resume: (id: string) => action('resume', id),
    retry: (id: string) => action('retry', id),

    async getSchedule(id: string): Promise<Schedule> {
      return unwrap(await api.GET('/v1/schedules/{id}', path(id)));
    },

    /** Every schedule matching the label selector, newest first, a page at a time. */
    listSchedules(o: { labelSelector?: string; limit?: number } = {}): AsyncGenerator<Schedule> {
      return paginate(async (cursor) => unwrap(await api.GET('/v1/schedules', { params: { query: { ...o, cursor } } })));
    },

    /** GET /v1/webhook-endpoints: the tenant's endpoints (one answer: the API does not page them). */
    async listWebhookEndpoints(): Promise<WebhookEndpoint[]> {
      return unwrap(await api.GET('/v1/webhook-endpoints')).items;
    },

    async getWebhookEndpoint(id: string): Promise<WebhookEndpoint> {
      return unwrap(await api.GET('/v1/webhook-endpoints/{id}', path(id)));
    },

    /** The newest deliveries, with their attempts, of a batch's events or to one endpoint. */
    async listWebhookDeliveries(owner: DeliveryOwner, o: { limit?: number } = {}): Promise<WebhookDelivery[]> {
      const query = { limit: o.limit };
      const page =
        'batchId' in owner
          ? unwrap(await api.GET('/v1/batches/{id}/webhook-deliveries', { params: { path: { id: owner.batchId }, query } }))
          : unwrap(await api.GET('/v1/webhook-endpoints/{id}/webhook-deliveries', { params: { path: { id: owner.endpointId }, query } }));
      return page.items;
    },
  };
}

export type FanoutClient = ReturnType<typeof createFanoutClient>;
