import { createHash } from 'node:crypto';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { batchHeaderSchema, batchSpecSchema, customIdOf, type BatchHeader } from '../domain/batch-spec.js';
import { PHASES } from '../domain/batch-status.js';
import { parseLabelSelector } from '../domain/label-selector.js';
import { renderTemplate, templatePlaceholders, TemplateError } from '../domain/template.js';
import { applyBatchAction, type BatchAction } from '../store/batch-actions.js';
import { abortUpload, beginUpload, createBatch, findIdempotentBatch, finishUpload, ItemWriter, type IdempotencyRecord, type NewItem } from '../store/batch-create.js';
import { deleteBatches, getBatch, listBatches, selectBatchIds } from '../store/batch-queries.js';
import { HALT_PAUSE, HALT_STOP } from '../runtimes/queue/protocol.js';
import type { ApiEnv, ApiDeps } from './deps.js';
import { ingestNdjson, lineProblem } from './ndjson-ingest.js';
import { fieldErrors, notFound, problem, validationProblem } from './problems.js';
import { batchListSchema, batchSchema, idParam, problemResponse } from './schemas.js';
import { batchView, decodeCursor, encodeCursor } from './views.js';

/** /v1/batches: create (JSON or streamed NDJSON), list, get, cancel/suspend/resume/retry, delete. */

const createRouteDef = createRoute({
  method: 'post',
  path: '/v1/batches',
  summary: 'Create a batch',
  description:
    'JSON: the batch spec with `items`. `application/x-ndjson`: the first line is the spec without items, each further line one item; streamed, never held whole in memory. `Idempotency-Key` makes retries safe.',
  request: {
    headers: z.object({ 'idempotency-key': z.string().max(255).optional() }),
    // Not `required`: @hono/zod-openapi would then run the JSON schema on NDJSON uploads too.
    body: {
      content: {
        'application/json': { schema: batchSpecSchema },
        'application/x-ndjson': { schema: z.string().openapi({ example: '{"task":"rev"}\n"foo"\n"bar"\n' }) },
      },
    },
  },
  responses: {
    202: { description: 'Stored: the batch, its items and the dispatch intent are committed.', headers: z.object({ Location: z.string() }), content: { 'application/json': { schema: batchSchema } } },
    400: problemResponse('Malformed JSON body'),
    409: problemResponse('The Idempotency-Key is being used by a request in progress'),
    413: problemResponse('Body, an item, or the item count over its limit'),
    415: problemResponse('Unsupported content type'),
    422: problemResponse('Invalid spec or items; or the Idempotency-Key was used with another body'),
  },
});

const listRoute = createRoute({
  method: 'get',
  path: '/v1/batches',
  summary: 'List batches, newest first',
  request: {
    query: z.object({
      labelSelector: z.string().optional().openapi({ example: 'jobgroup=jobexample,tier notin (dev)' }),
      phase: z.enum(PHASES).optional(),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      cursor: z.string().optional(),
    }),
  },
  responses: { 200: { description: 'A page of batches', content: { 'application/json': { schema: batchListSchema } } }, 400: problemResponse('Bad label selector'), 422: problemResponse('Bad query') },
});

const getRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}',
  summary: 'Get a batch with its status',
  request: { params: idParam },
  responses: { 200: { description: 'The batch', content: { 'application/json': { schema: batchSchema } } }, 404: problemResponse('No such batch') },
});

const actionRoute = (action: BatchAction, summary: string) =>
  createRoute({
    method: 'post',
    path: `/v1/batches/{id}/${action}`,
    summary,
    request: { params: idParam },
    responses: {
      200: { description: 'The batch after the action', content: { 'application/json': { schema: batchSchema } } },
      404: problemResponse('No such batch'),
      409: problemResponse('The action is not allowed in the batch phase'),
    },
  });

const deleteRoute = createRoute({
  method: 'delete',
  path: '/v1/batches/{id}',
  summary: 'Delete a batch, its items and results',
  request: { params: idParam },
  responses: { 204: { description: 'Deleted' }, 404: problemResponse('No such batch') },
});

const deleteManyRoute = createRoute({
  method: 'delete',
  path: '/v1/batches',
  summary: 'Delete every batch matching a label selector',
  request: { query: z.object({ labelSelector: z.string().min(1) }) },
  responses: { 200: { description: 'How many were deleted', content: { 'application/json': { schema: z.object({ deleted: z.number().int() }) } } }, 400: problemResponse('Bad label selector'), 422: problemResponse('No label selector') },
});

export function batchesRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });
  const { store } = deps;

  app.use('/v1/batches', async (c, next) => {
    // Checked before the route's body validator, which would answer a bare 415 without saying what to send.
    const contentType = c.req.header('content-type');
    if (c.req.method === 'POST' && !isNdjson(contentType) && !/^application\/json\b/i.test(contentType ?? '')) {
      throw problem(415, 'unsupported-media-type', 'Unsupported Media Type', `send application/json or application/x-ndjson, not ${contentType ?? 'a body without Content-Type'}`);
    }
    // JSON bodies are bounded in memory; NDJSON is streamed and bounded per item instead.
    if (c.req.method === 'POST' && !isNdjson(contentType)) {
      return bodyLimit({
        maxSize: deps.config.limits.maxBodyBytes,
        onError: () => {
          throw problem(413, 'too-large', 'Payload Too Large', `the JSON body is larger than the ${deps.config.limits.maxBodyBytes}-byte limit; send big batches as application/x-ndjson`);
        },
      })(c, next);
    }
    return next();
  });

  app.openapi(
    createRouteDef,
    async (c) => {
      const tenantId = deps.tenantOf(c);
      const key = c.req.header('idempotency-key');
      const contentType = c.req.header('content-type');
      let id: string;
      if (isNdjson(contentType)) {
        id = await createFromNdjson(deps, tenantId, c.req.raw.body, key);
      } else {
        // Anything but JSON was refused with 415 by the middleware above.
        const raw = await c.req.text();
        id = await createFromJson(deps, tenantId, raw, key);
      }
      deps.notify(id);
      const row = getBatch(store, tenantId, id)!;
      c.header('Location', `/v1/batches/${id}`);
      return c.json(batchView(store, row) as never, 202);
    },
  );

  app.openapi(listRoute, (c) => {
    const tenantId = deps.tenantOf(c);
    const q = c.req.valid('query');
    const selector = parseLabelSelector(q.labelSelector ?? '');
    const page = listBatches(store, tenantId, { selector, phase: q.phase, limit: q.limit, after: decodeCursor(q.cursor, /^b[0-9a-z]+$/) });
    const last = page.rows[page.rows.length - 1];
    return c.json({ items: page.rows.map((r) => batchView(store, r)), nextCursor: page.more && last ? encodeCursor(last.id) : null } as never, 200);
  });

  app.openapi(getRoute, (c) => {
    const row = getBatch(store, deps.tenantOf(c), c.req.valid('param').id);
    if (!row) throw notFound('batch');
    return c.json(batchView(store, row) as never, 200);
  });

  for (const [action, summary] of [
    ['cancel', 'Cancel a batch: running items are abandoned, pending ones never start'],
    ['suspend', 'Suspend a batch: no new items start until it is resumed'],
    ['resume', 'Resume a suspended batch'],
    ['retry', 'Re-run the failed items of a finished batch'],
  ] as const) {
    app.openapi(actionRoute(action, summary), async (c) => {
      const id = c.req.valid('param').id;
      const row = applyBatchAction(store, deps.tenantOf(c), id, action);
      if (action === 'cancel' || action === 'suspend') await deps.haltInRedis([id], action === 'cancel' ? HALT_STOP : HALT_PAUSE);
      deps.notify(id);
      return c.json(batchView(store, row) as never, 200);
    });
  }

  app.openapi(deleteRoute, async (c) => {
    const deleted = deleteBatches(store, deps.tenantOf(c), [c.req.valid('param').id]);
    if (deleted.length === 0) throw notFound('batch');
    await deps.forgetInRedis(deleted);
    return c.body(null, 204);
  });

  app.openapi(deleteManyRoute, async (c) => {
    const tenantId = deps.tenantOf(c);
    const selector = parseLabelSelector(c.req.valid('query').labelSelector);
    const deleted = deleteBatches(store, tenantId, selectBatchIds(store, tenantId, selector));
    await deps.forgetInRedis(deleted);
    return c.json({ deleted: deleted.length }, 200);
  });

  return app;
}

function isNdjson(contentType: string | undefined): boolean {
  // Only the media type the route declares: the route's body gate refuses any other with 415.
  return !!contentType && /^application\/x-ndjson\b/i.test(contentType);
}

/** Checks what a spec needs from this server: a runtime it runs, a task some worker has. */
async function checkRunnable(deps: ApiDeps, header: BatchHeader, linePrefix?: number): Promise<void> {
  const at = (pointer: string, detail: string) =>
    validationProblem([{ pointer, detail, ...(linePrefix ? { line: linePrefix } : {}) }]);
  if (header.runtime !== 'queue') {
    throw at('/runtime', `runtime "${header.runtime}" needs Kubernetes, which this server is not configured for; use "queue"`);
  }
  if (header.template?.env) {
    // A malformed placeholder is wrong whatever the items are: name the template field, not an item.
    try {
      templatePlaceholders(header.template.env);
    } catch (err) {
      if (err instanceof TemplateError) throw at(`/template/env${err.path}`, err.message);
      throw err;
    }
  }
  if (!header.task) throw at('/task', 'a queue batch names the task to run: one that workers registered with --task NAME=…');
  const known = await deps.knownTasks();
  if (known && !known.has(header.task)) {
    const list = [...known].sort().join(', ') || 'none';
    throw at('/task', `unknown task "${header.task}": no worker has registered it (registered: ${list})`);
  }
}

/** Renders the template for each item at submission, so a missing field is a 422 now, not a failure later. */
function checkTemplate(header: BatchHeader, item: unknown, index: number, pointerBase: string): void {
  if (!header.template?.env) return;
  try {
    renderTemplate(header.template.env, item, index);
  } catch (err) {
    if (err instanceof TemplateError) throw validationProblem([{ pointer: `${pointerBase}`, detail: err.message }]);
    throw err;
  }
}

function idempotentReplay(deps: ApiDeps, tenantId: string, key: string | undefined, requestHash: string): string | undefined {
  if (!key) return undefined;
  const found = findIdempotentBatch(deps.store, tenantId, key);
  if (!found) return undefined;
  if (found.requestHash !== requestHash) {
    throw problem(422, 'idempotency-key-reused', 'Idempotency-Key reused', `Idempotency-Key ${JSON.stringify(key)} was already used with a different request body`);
  }
  return found.batchId;
}

async function createFromJson(deps: ApiDeps, tenantId: string, raw: string, key: string | undefined): Promise<string> {
  const requestHash = createHash('sha256').update(raw).digest('hex');
  const replay = idempotentReplay(deps, tenantId, key, requestHash);
  if (replay) return replay;
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch (err) {
    throw problem(400, 'malformed-json', 'Malformed JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = batchSpecSchema.safeParse(body);
  if (!parsed.success) throw validationProblem(fieldErrors(parsed.error.issues));
  const { items, ...header } = parsed.data;
  const limits = deps.config.limits;
  if (items.length > limits.maxItemsPerBatch) {
    throw problem(413, 'too-large', 'Payload Too Large', `${items.length} items is more than the ${limits.maxItemsPerBatch}-item limit per batch`, {
      errors: [{ pointer: '/items', detail: `at most ${limits.maxItemsPerBatch} items` }],
    });
  }
  await checkRunnable(deps, header);
  const rows: NewItem[] = items.map((item, i) => {
    const input = JSON.stringify(item === undefined ? null : item);
    if (Buffer.byteLength(input) > limits.maxItemBytes) {
      throw problem(413, 'too-large', 'Payload Too Large', `item ${i} is larger than the ${limits.maxItemBytes}-byte item limit`, {
        errors: [{ pointer: `/items/${i}`, detail: `larger than ${limits.maxItemBytes} bytes` }],
      });
    }
    checkTemplate(header, item, i, `/items/${i}`);
    return { input, customId: customIdOf(item) };
  });
  const idem: IdempotencyRecord | undefined = key ? { key, requestHash } : undefined;
  return withIdempotencyRace(deps, tenantId, key, requestHash, () => createBatch(deps.store, tenantId, header, rows, idem));
}

async function createFromNdjson(deps: ApiDeps, tenantId: string, body: ReadableStream<Uint8Array> | null, key: string | undefined): Promise<string> {
  const hash = createHash('sha256');
  if (key && findIdempotentBatch(deps.store, tenantId, key)) {
    // Compare the whole body's hash without storing it, then answer as the first time.
    const reader = body?.getReader();
    for (;;) {
      const r = await reader?.read();
      if (!r || r.done) break;
      hash.update(r.value);
    }
    return idempotentReplay(deps, tenantId, key, hash.digest('hex'))!;
  }
  let header: BatchHeader | undefined;
  let id: string | undefined;
  const writer = new ItemWriter(deps.store);
  try {
    const { total } = await ingestNdjson(body, {
      maxItemBytes: deps.config.limits.maxItemBytes,
      maxItems: deps.config.limits.maxItemsPerBatch,
      hash,
      onHeader: async (line) => {
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (err) {
          throw lineProblem(1, `the first line must be the batch spec as JSON: ${(err as Error).message}`);
        }
        const parsed = batchHeaderSchema.safeParse(value);
        if (!parsed.success) {
          const errors = fieldErrors(parsed.error.issues).map((e) => ({ ...e, line: 1 }));
          throw validationProblem(errors, `line 1: ${errors[0].pointer}: ${errors[0].detail}`);
        }
        header = parsed.data;
        await checkRunnable(deps, header, 1);
        id = beginUpload(deps.store, tenantId, header);
      },
      onItems: (first, rows) => {
        if (header?.template?.env) rows.forEach((r, k) => checkTemplate(header!, JSON.parse(r.input), first + k, `/items/${first + k}`));
        writer.writeChunk(id!, first, rows);
      },
    });
    const requestHash = hash.digest('hex');
    const idem = key ? { key, requestHash } : undefined;
    const created = withIdempotencyRace(deps, tenantId, key, requestHash, () => {
      finishUpload(deps.store, tenantId, id!, total, idem);
      return id!;
    });
    if (created !== id) abortUpload(deps.store, id!);
    return created;
  } catch (err) {
    if (id) abortUpload(deps.store, id);
    throw err;
  }
}

/** Two requests with one new key at once: the loser answers with the winner's batch. */
function withIdempotencyRace(deps: ApiDeps, tenantId: string, key: string | undefined, requestHash: string, create: () => string): string {
  try {
    return create();
  } catch (err) {
    if (key && /UNIQUE constraint failed: idempotency_keys/.test((err as Error).message)) {
      const replay = idempotentReplay(deps, tenantId, key, requestHash);
      if (replay) return replay;
      throw problem(409, 'conflict', 'Conflict', `a request with Idempotency-Key ${JSON.stringify(key)} is in progress`);
    }
    throw err;
  }
}
