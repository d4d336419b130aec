import createClient from 'openapi-fetch';
import type { components, paths } from './generated/schema.js';
import { FanoutProblemError, problemFromBody, problemFromResponse } from './errors.js';
import { readLines } from './lines.js';
import { parseEventStream } from './sse.js';

export type Batch = components['schemas']['Batch'];
export type BatchSpec = components['schemas']['BatchSpec'];
export type BatchList = components['schemas']['BatchList'];
export type BatchPhase = components['schemas']['BatchStatus']['phase'];
export type ItemCounts = components['schemas']['ItemCounts'];
export type ResultLine = components['schemas']['ResultLine'];

/** What `waitForBatch` reports while it waits: from an SSE `progress` event or a poll. */
export interface BatchProgress {
  phase: BatchPhase;
  counts: ItemCounts;
}

export interface FanoutClientOptions {
  baseUrl: string;
  apiKey: string;
  /** custom fetch (tests, proxies); defaults to globalThis.fetch */
  fetch?: (input: Request) => Promise<Response>;
}

export interface ListBatchesOptions {
  labelSelector?: string;
  phase?: BatchPhase;
  /** page size asked of the server (1–500) */
  limit?: number;
}

export interface WaitOptions {
  onProgress?: (progress: BatchProgress) => void;
  signal?: AbortSignal;
  /** polling interval when the event stream is unavailable; default 1000 ms */
  pollMs?: number;
}

const FINAL_PHASES: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'Cancelled']);

/** True for the phases a batch does not leave on its own. */
export function isFinalPhase(phase: string): boolean {
  return FINAL_PHASES.has(phase);
}

/** Data of a result: the answer's body, or the problem it carried (thrown). */
function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.error !== undefined || !r.response.ok) throw problemFromBody(r.response, r.error);
  return r.data as T;
}

/**
 * A typed client for the Fanout API: a thin layer over openapi-fetch with the generated
 * `paths`, plus what plain request/response calls don't give: a page iterator, waiting on a
 * batch (server-sent events, else polling), streamed NDJSON results and problem errors.
 */
export function createFanoutClient(options: FanoutClientOptions) {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? ((input: Request) => globalThis.fetch(input));
  const api = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${options.apiKey}` }, fetch: doFetch });
  const path = (id: string) => ({ params: { path: { id } } });

  async function getBatch(id: string, signal?: AbortSignal): Promise<Batch> {
    return unwrap(await api.GET('/v1/batches/{id}', { ...path(id), signal }));
  }

  /** Follows `GET /v1/batches/{id}/events` to `done`; undefined when the stream is not there or breaks. */
  async function waitWithEvents(id: string, o: WaitOptions): Promise<Batch | undefined> {
    let res: Response;
    try {
      res = await doFetch(
        new Request(`${baseUrl}/v1/batches/${encodeURIComponent(id)}/events`, {
          headers: { authorization: `Bearer ${options.apiKey}`, accept: 'text/event-stream' },
          signal: o.signal,
        }),
      );
    } catch (err) {
      if (o.signal?.aborted) throw err;
      return undefined;
    }
    if (res.status !== 200 || !res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      await res.body?.cancel().catch(() => {});
      return undefined;
    }
    try {
      for await (const ev of parseEventStream(res.body)) {
        if (ev.event !== 'progress' && ev.event !== 'done') continue;
        let data: Partial<BatchProgress> = {};
        try {
          data = JSON.parse(ev.data) as Partial<BatchProgress>;
        } catch {
          // a malformed event: the next one or the final getBatch says more
        }
        if (data.phase && data.counts) o.onProgress?.({ phase: data.phase, counts: data.counts });
        if (ev.event === 'done') return await getBatch(id, o.signal);
      }
    } catch (err) {
      if (o.signal?.aborted) throw err;
    }
    return undefined;
  }

  async function waitWithPolling(id: string, o: WaitOptions): Promise<Batch> {
    const pollMs = o.pollMs ?? 1000;
    let last = '';
    for (;;) {
      o.signal?.throwIfAborted();
      const batch = await getBatch(id, o.signal);
      const seen = JSON.stringify([batch.status.phase, batch.status.counts]);
      if (seen !== last) {
        last = seen;
        o.onProgress?.({ phase: batch.status.phase, counts: batch.status.counts });
      }
      if (isFinalPhase(batch.status.phase)) return batch;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(done, pollMs);
        function done() {
          o.signal?.removeEventListener('abort', aborted);
          resolve();
        }
        function aborted() {
          clearTimeout(timer);
          reject(o.signal!.reason);
        }
        o.signal?.addEventListener('abort', aborted, { once: true });
      });
    }
  }

  async function action(which: 'cancel' | 'suspend' | 'resume' | 'retry', id: string): Promise<Batch> {
    return unwrap(await api.POST(`/v1/batches/{id}/${which}`, path(id))) as Batch;
  }

  return {
    /** The underlying openapi-fetch client, for endpoints this layer does not wrap. */
    api,

    /** POST /v1/batches; `idempotencyKey` makes a retried create return the same batch. */
    async createBatch(spec: BatchSpec, o: { idempotencyKey?: string } = {}): Promise<Batch> {
      const params = o.idempotencyKey ? { header: { 'idempotency-key': o.idempotencyKey } } : {};
      return unwrap(await api.POST('/v1/batches', { body: spec, params }));
    },

    getBatch: (id: string) => getBatch(id),

    /** Every batch matching the filters, newest first, fetched a page at a time via `nextCursor`. */
    async *listBatches(o: ListBatchesOptions = {}): AsyncGenerator<Batch> {
      let cursor: string | undefined;
      do {
        const query = { labelSelector: o.labelSelector, phase: o.phase, limit: o.limit, cursor };
        const page = unwrap(await api.GET('/v1/batches', { params: { query } }));
        yield* page.items;
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    },

    /**
     * Resolves with the batch once it is Succeeded, Failed or Cancelled. Follows the batch's
     * event stream when the server offers one; otherwise (or when it breaks) polls getBatch.
     */
    async waitForBatch(id: string, o: WaitOptions = {}): Promise<Batch> {
      return (await waitWithEvents(id, o)) ?? (await waitWithPolling(id, o));
    },

    /** GET /v1/batches/{id}/results: one line per item in index order, parsed as it streams in. */
    async *results(id: string, o: { signal?: AbortSignal } = {}): AsyncGenerator<ResultLine> {
      const r = await api.GET('/v1/batches/{id}/results', { ...path(id), parseAs: 'stream', signal: o.signal });
      if (!r.response.ok) throw await problemFromResponse(r.response);
      if (!r.data) return;
      for await (const line of readLines(r.data)) {
        if (line.trim() !== '') yield JSON.parse(line) as ResultLine;
      }
    },

    cancel: (id: string) => action('cancel', id),
    suspend: (id: string) => action('suspend', id),
    resume: (id: string) => action('resume', id),
    retry: (id: string) => action('retry', id),
  };
}

export type FanoutClient = ReturnType<typeof createFanoutClient>;
export { FanoutProblemError };
