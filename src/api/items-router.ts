import { Readable } from 'node:stream';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { getBatch, getBatchById, type BatchRow } from '../store/batch-queries.js';
import { getItem, listAttempts, listItems, resultPage, type AttemptRow, type ItemRow, type ItemStatus } from '../store/item-queries.js';
import { applyReports } from '../store/reports.js';
import { storePodResult } from '../store/kubernetes-sync.js';
import { parseHeader } from '../store/batch-state.js';
import type { Op } from '../store/op.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { notFound, problem } from './problems.js';
import { cursorQuery, idParam, itemListSchema, itemParam, itemSchema, problemResponse, resultLineSchema } from './schemas.js';
import { decodeCursor, encodeCursor, itemView, itemWithInputJson } from './views.js';

/** Items of a batch: list and detail for clients, input and result for workers, NDJSON results. */

const listRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}/items',
  operationId: 'listBatchItems',
  tags: ['Items'],
  summary: 'List items in index order, with their attempts',
  request: {
    params: idParam,
    query: z.object({
      status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled']).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      cursor: cursorQuery,
    }),
  },
  responses: { 200: { description: 'A page of items', content: { 'application/json': { schema: itemListSchema } } }, 404: problemResponse('No such batch'), 422: problemResponse('Bad query') },
});

const getRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}/items/{index}',
  operationId: 'getBatchItem',
  tags: ['Items'],
  summary: 'Get one item with its input and attempts',
  request: { params: itemParam },
  responses: { 200: { description: 'The item', content: { 'application/json': { schema: itemSchema } } }, 404: problemResponse('No such batch or item'), 422: problemResponse('Bad index') },
});

const inputRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}/items/{index}/input',
  operationId: 'getBatchItemInput',
  tags: ['Items'],
  summary: "An item's input, for workers (batch-scoped token or API key)",
  request: { params: itemParam },
  responses: {
    200: { description: 'The item as JSON', content: { 'application/json': { schema: z.unknown() } } },
    403: problemResponse('The token is not valid for this batch'),
    404: problemResponse('No such batch or item'),
    422: problemResponse('Bad index'),
  },
});

const resultRoute = createRoute({
  method: 'put',
  path: '/v1/batches/{id}/items/{index}/result',
  operationId: 'putBatchItemResult',
  tags: ['Items'],
  summary: "Record a successful attempt's result, for workers (streamed; large results go to the blob store)",
  request: {
    params: itemParam,
    headers: z.object({ 'fanout-attempt': z.string().regex(/^\d+$/).optional().openapi({ description: 'The attempt the result belongs to; defaults to the current one' }) }),
    // Plain schema objects, not zod: a zod body schema makes the route parse the body before the
    // handler, which then finds the stream locked (and a big result would be buffered whole).
    body: { content: { 'text/plain': { schema: { type: 'string' } }, 'application/json': { schema: {} } } },
  },
  responses: {
    200: {
      description:
        'Whether this upload was recorded. false: another upload for the same attempt was recorded first, the attempt is stale, or the item is final; the recorded result stays as it was and nothing of this upload is kept',
      content: { 'application/json': { schema: z.object({ recorded: z.boolean() }) } },
    },
    400: problemResponse('Sent as application/json but not valid JSON'),
    403: problemResponse('The token is not valid for this batch'),
    404: problemResponse('No such batch or item'),
    413: problemResponse('Result over its limit'),
    422: problemResponse('Bad index or Fanout-Attempt header'),
  },
});

const resultsRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}/results',
  operationId: 'getBatchResults',
  tags: ['Items'],
  summary: 'Every item as one NDJSON line, in index order, streamed',
  request: { params: idParam },
  responses: { 200: { description: 'NDJSON lines', content: { 'application/x-ndjson': { schema: resultLineSchema } } }, 404: problemResponse('No such batch') },
});

export function itemsRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });
  const { store } = deps;

  const batchOf = async (c: Context<ApiEnv>, id: string): Promise<BatchRow> => {
    const row = await store.read(getBatch(deps.tenantOf(c), id));
    if (!row) throw notFound('batch');
    return row;
  };

  /** Worker routes take the batch's own token, or an API key of the batch's tenant. */
  const workerBatch = async (c: Context<ApiEnv>, id: string): Promise<BatchRow> => {
    const token = c.get('workerToken');
    if (token) {
      if (!deps.tokens.verify(id, token)) throw problem(403, 'forbidden', 'Forbidden', 'this token is not valid for this batch');
      const row = await store.read(getBatchById(id));
      if (!row) throw notFound('batch');
      return row;
    }
    return batchOf(c, id);
  };

  app.openapi(listRoute, async (c) => {
    const { id } = c.req.valid('param');
    const q = c.req.valid('query');
    await batchOf(c, id);
    const after = decodeCursor(q.cursor, /^\d+$/);
    const { page, attempts } = await store.read(itemPage(id, { status: q.status, limit: q.limit, afterIndex: after === undefined ? undefined : Number(after) }));
    const last = page.rows[page.rows.length - 1];
    return c.json(
      {
        items: page.rows.map((r) => itemView(r, attempts.filter((a) => a.idx === r.idx))),
        nextCursor: page.more && last ? encodeCursor(last.idx) : null,
      } as never,
      200,
    );
  });

  app.openapi(getRoute, async (c) => {
    const { id, index } = c.req.valid('param');
    await batchOf(c, id);
    const { item, attempts } = await store.read(itemWithAttempts(id, index));
    if (!item) throw notFound(`item ${index}`);
    return c.body(itemWithInputJson(item, attempts), 200, { 'content-type': 'application/json' }) as never;
  });

  app.openapi(inputRoute, async (c) => {
    const { id, index } = c.req.valid('param');
    await workerBatch(c, id);
    const item = await store.read(getItem(id, index));
    if (!item) throw notFound(`item ${index}`);
    return new Response(item.input, { status: 200, headers: { 'content-type': 'application/json', 'fanout-attempt': String(item.attempt) } }) as never;
  });

  app.openapi(resultRoute, async (c) => {
    const { id, index } = c.req.valid('param');
    const batch = await workerBatch(c, id);
    const item = await store.read(getItem(id, index));
    if (!item) throw notFound(`item ${index}`);
    if (parseHeader(batch).runtime !== 'queue') {
      // A pod of a Kubernetes Job (`fanout exec`): keep the result; the item succeeds when the
      // Job counts its index, which happens after this PUT returned and the pod exited 0.
      const stored = await receiveResult(deps, c.req.raw, id, index, item.attempt);
      const recorded = await store.write(storePodResult(id, index, stored.blob ? null : JSON.stringify(stored.value ?? null), stored.blob ?? null));
      if (!recorded && stored.blob) await deps.blobs.delete(stored.blob);
      return c.json({ recorded }, 200);
    }
    const attemptHeader = c.req.valid('header')['fanout-attempt'];
    const attempt = attemptHeader === undefined ? item.attempt : Number(attemptHeader);
    const stored = await receiveResult(deps, c.req.raw, id, index, attempt);
    const { applied } = await store.write(
      applyReports(id, null, [
        { i: index, a: attempt, outcome: 'succeeded', ...(stored.blob ? { resultBlob: stored.blob, resultBytes: stored.size } : { result: stored.value }), finishedAt: Date.now() },
      ]),
    );
    // Lost to another upload, a newer attempt or a final item: only this request's own blob goes.
    if (applied === 0 && stored.blob) await deps.blobs.delete(stored.blob);
    if (applied > 0) deps.notify(id);
    return c.json({ recorded: applied > 0 }, 200);
  });

  app.openapi(resultsRoute, async (c) => {
    const { id } = c.req.valid('param');
    await batchOf(c, id);
    return new Response(Readable.toWeb(Readable.from(resultLines(deps, id))) as ReadableStream, {
      status: 200,
      headers: { 'content-type': 'application/x-ndjson' },
    }) as never;
  });

  return app;
}

/** A page of items with their attempts, read together (one snapshot). */
export function* itemPage(batchId: string, q: { status?: ItemStatus; limit: number; afterIndex?: number }): Op<{ page: { rows: ItemRow[]; more: boolean }; attempts: AttemptRow[] }> {
  const page = yield* listItems(batchId, q);
  const attempts = yield* listAttempts(batchId, page.rows);
  return { page, attempts };
}

function* itemWithAttempts(batchId: string, index: number): Op<{ item: ItemRow | undefined; attempts: AttemptRow[] }> {
  const item = yield* getItem(batchId, index);
  return { item, attempts: item ? yield* listAttempts(batchId, [item]) : [] };
}

/**
 * Reads a PUT result body: small ones are kept as a value for the row; once one outgrows the
 * inline limit it is streamed into a new blob as it arrives (never buffered whole). The blob is
 * this request's own (see BlobStore.put): a client that disconnects or goes over the limit
 * leaves nothing behind.
 */
async function receiveResult(deps: ApiDeps, req: Request, batchId: string, index: number, attempt: number): Promise<{ value?: unknown; blob?: string; size?: number }> {
  const inlineLimit = deps.config.limits.inlineResultBytes;
  const max = deps.config.limits.maxResultBytes;
  const isJson = (req.headers.get('content-type') ?? '').startsWith('application/json');
  const reader = req.body?.getReader();
  let size = 0;
  const next = async (): Promise<Uint8Array | undefined> => {
    const r = reader ? await reader.read() : { done: true as const, value: undefined };
    if (r.done) return undefined;
    size += r.value.byteLength;
    if (size > max) throw problem(413, 'too-large', 'Payload Too Large', `the result is larger than the ${max}-byte limit`);
    return r.value;
  };
  const head: Uint8Array[] = [];
  while (size <= inlineLimit) {
    const chunk = await next();
    if (!chunk) break;
    head.push(chunk);
  }
  if (size > inlineLimit) {
    async function* body(): AsyncGenerator<Uint8Array> {
      yield* head;
      for (;;) {
        const chunk = await next();
        if (!chunk) return;
        yield chunk;
      }
    }
    const blob = await deps.blobs.put(batchId, `${index}.${attempt}`, body());
    return { blob, size };
  }
  const text = Buffer.concat(head).toString('utf8');
  if (isJson) {
    try {
      return { value: JSON.parse(text) };
    } catch {
      throw problem(400, 'malformed-json', 'Malformed JSON', 'the result was sent as application/json but is not valid JSON');
    }
  }
  return { value: text };
}

/** Result rows per read while streaming results (each page its own read: see resultPage). */
const RESULT_PAGE_SIZE = 2000;

/** NDJSON result lines; a blob result is streamed into its line as a JSON string. */
export async function* resultLines(deps: Pick<ApiDeps, 'store' | 'blobs'>, batchId: string): AsyncGenerator<string> {
  for (let after = -1; ; ) {
    const page = await deps.store.read(resultPage(batchId, after, RESULT_PAGE_SIZE));
    if (page.length === 0) return;
    after = page[page.length - 1].idx;
    let out = '';
    for (const r of page) {
      const head = { index: r.idx, customId: r.customId, status: r.status };
      const tail = { error: r.error, attempts: r.attemptCount };
      if (r.resultBlob) {
        if (out) yield out;
        out = '';
        yield `${JSON.stringify(head).slice(0, -1)},"result":"`;
        yield* blobAsJsonString(deps.blobs.read(r.resultBlob));
        yield `",${JSON.stringify(tail).slice(1)}\n`;
      } else {
        out += JSON.stringify({ ...head, result: r.result === null ? null : JSON.parse(r.result), ...tail }) + '\n';
      }
    }
    if (out) yield out;
    if (page.length < RESULT_PAGE_SIZE) return;
  }
}

/** The body of a JSON string literal for a blob's text, chunk by chunk. */
async function* blobAsJsonString(blob: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  for await (const chunk of blob) yield JSON.stringify(decoder.decode(chunk, { stream: true })).slice(1, -1);
  yield JSON.stringify(decoder.decode()).slice(1, -1);
}
