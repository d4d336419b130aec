import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { batchSpecSchema } from '../domain/batch-spec.js';
import { isFinalPhase, PHASES, type Phase } from '../domain/batch-status.js';
import { parseLabelSelector, type LabelRequirement } from '../domain/label-selector.js';
import { applyBatchAction, type BatchAction } from '../store/batch-actions.js';
import { setBatchPriority } from '../store/batch-priority.js';
import { deleteBatches, getBatch, getBatchById, listBatches, selectBatchIds, type BatchRow, type DeletedBatch } from '../store/batch-queries.js';
import { lockBatch, parseHeader } from '../store/batch-state.js';
import { admitSubmission } from '../store/quotas.js';
import type { Quotas } from '../domain/quotas.js';
import type { Op } from '../store/op.js';
import { HALT_PAUSE, HALT_STOP } from '../contracts/halt.js';
import { registerBatchEvents } from './batch-events.js';
import { createFromJson, createFromNdjson } from './batch-submission.js';
import type { ApiEnv, ApiDeps } from './deps.js';
import { isJsonMediaType } from './json-body.js';
import { notFound, problem, requireJsonBody } from './problems.js';
import { batchListSchema, batchPatchSchema, batchSchema, cursorQuery, idParam, labelSelectorQuery, problemResponse } from './schemas.js';
import { decodeCursor, encodeCursor, loadBatchView, loadBatchViews } from './views.js';

/** /v1/batches: create (JSON or streamed NDJSON), list, get, cancel/suspend/resume/retry, delete. */

const createRouteDef = createRoute({
  method: 'post',
  path: '/v1/batches',
  operationId: 'createBatch',
  tags: ['Batches'],
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
    403: problemResponse('Over a storage quota (storedItems, storedResultBytes), or larger than a whole minute of a rate quota; names the quota, its limit and use'),
    409: problemResponse('The Idempotency-Key is being used by a request in progress'),
    413: problemResponse('Body, an item, or the item count over its limit'),
    415: problemResponse('Unsupported content type'),
    422: problemResponse('Invalid spec or items; or the Idempotency-Key was used with another body'),
    429: problemResponse('Over a submission-rate quota (batchesPerMinute, itemsPerMinute); Retry-After, RateLimit-Policy and RateLimit say when to come back'),
  },
});

const listRoute = createRoute({
  method: 'get',
  path: '/v1/batches',
  operationId: 'listBatches',
  tags: ['Batches'],
  summary: 'List batches, newest first',
  request: {
    query: z.object({
      labelSelector: labelSelectorQuery.optional().openapi({ example: 'jobgroup=jobexample,tier notin (dev)' }),
      phase: z.enum(PHASES).optional(),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      cursor: cursorQuery,
    }),
  },
  responses: { 200: { description: 'A page of batches', content: { 'application/json': { schema: batchListSchema } } }, 400: problemResponse('Bad label selector'), 422: problemResponse('Bad query') },
});

const getRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}',
  operationId: 'getBatch',
  tags: ['Batches'],
  summary: "Get a batch with its status (API key, or the batch's own worker token)",
  request: { params: idParam },
  responses: {
    200: { description: 'The batch', content: { 'application/json': { schema: batchSchema } } },
    403: problemResponse('The token is not valid for this batch'),
    404: problemResponse('No such batch'),
  },
});

const actionRoute = (action: BatchAction, summary: string) =>
  createRoute({
    method: 'post',
    path: `/v1/batches/{id}/${action}`,
    operationId: `${action}Batch`,
    tags: ['Batches'],
    summary,
    request: { params: idParam },
    responses: {
      200: { description: 'The batch after the action', content: { 'application/json': { schema: batchSchema } } },
      404: problemResponse('No such batch'),
      409: problemResponse('The action is not allowed in the batch phase'),
      ...(action === 'retry'
        ? {
            403: problemResponse('The items to re-run are more than a whole minute of the itemsPerMinute quota, or storedResultBytes is used up'),
            429: problemResponse('Over the itemsPerMinute quota; Retry-After, RateLimit-Policy and RateLimit say when to come back'),
          }
        : {}),
    },
  });

const patchRoute = createRoute({
  method: 'patch',
  path: '/v1/batches/{id}',
  operationId: 'updateBatch',
  tags: ['Batches'],
  summary: 'Change a batch while it runs (priority)',
  description: 'A new `priority` takes effect at the dispatcher\'s next release of the tenant\'s batches; leases already queued keep their place.',
  request: { params: idParam, body: { required: true, content: { 'application/json': { schema: batchPatchSchema } } } },
  responses: {
    200: { description: 'The batch after the change', content: { 'application/json': { schema: batchSchema } } },
    400: problemResponse('Malformed JSON body'),
    404: problemResponse('No such batch'),
    415: problemResponse('The body is not application/json'),
    422: problemResponse('Invalid change (the pointer names the field)'),
  },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/v1/batches/{id}',
  operationId: 'deleteBatch',
  tags: ['Batches'],
  summary: 'Delete a batch, its items and results',
  request: { params: idParam },
  responses: { 204: { description: 'Deleted' }, 404: problemResponse('No such batch') },
});

const deleteManyRoute = createRoute({
  method: 'delete',
  path: '/v1/batches',
  operationId: 'deleteBatches',
  tags: ['Batches'],
  summary: 'Delete every batch matching a label selector',
  request: { query: z.object({ labelSelector: labelSelectorQuery.min(1) }) },
  responses: { 200: { description: 'How many were deleted', content: { 'application/json': { schema: z.object({ deleted: z.number().int() }) } } }, 400: problemResponse('Bad label selector'), 422: problemResponse('No label selector') },
});

export function batchesRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });
  const { store } = deps;

  app.use('/v1/batches', async (c, next) => {
    // Checked before the route's body validator, which would answer a bare 415 without saying what to send.
    const contentType = c.req.header('content-type');
    if (c.req.method === 'POST' && !isNdjson(contentType) && !isJsonMediaType(contentType)) {
      throw problem(415, 'unsupported-media-type', 'Unsupported Media Type', `send application/json or application/x-ndjson, not ${contentType ?? 'a body without Content-Type'}`);
    }
    // A JSON body was read within FANOUT_MAX_BODY_BYTES by the app's boundedBody; NDJSON streams.
    return next();
  });
  app.use('/v1/batches/:id', requireJsonBody(['PATCH']));

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
        // Anything but JSON was refused with 415 by the middleware above, and the route's
        // validator has checked the JSON against the spec schema.
        const spec = c.req.valid('json');
        if (typeof spec !== 'object') throw new Error('a JSON create reached its handler without a validated spec');
        id = await createFromJson(deps, tenantId, await c.req.text(), spec, key);
      }
      deps.notify(id);
      const row = (await store.read(getBatch(tenantId, id)))!;
      c.header('Location', `/v1/batches/${id}`);
      return c.json((await loadBatchView(store, row)) as never, 202);
    },
  );

  app.openapi(listRoute, async (c) => {
    const tenantId = deps.tenantOf(c);
    const q = c.req.valid('query');
    const selector = parseLabelSelector(q.labelSelector ?? '');
    const page = await store.read(listBatches(tenantId, { selector, phase: q.phase, limit: q.limit, after: decodeCursor(q.cursor, /^b[0-9a-z]+$/) }));
    const last = page.rows[page.rows.length - 1];
    return c.json({ items: await loadBatchViews(store, page.rows), nextCursor: page.more && last ? encodeCursor(last.id) : null } as never, 200);
  });

  app.openapi(getRoute, async (c) => {
    const id = c.req.valid('param').id;
    // A batch's own worker token may read that batch (a worker Job polls it to know when to exit).
    const token = c.get('workerToken');
    if (token && !deps.tokens.verify(id, token)) throw problem(403, 'forbidden', 'Forbidden', 'this token is not valid for this batch');
    const row = await store.read(token ? getBatchById(id) : getBatch(deps.tenantOf(c), id));
    if (!row) throw notFound('batch');
    return c.json((await loadBatchView(store, row)) as never, 200);
  });

  registerBatchEvents(app, deps);

  for (const [action, summary] of [
    ['cancel', 'Cancel a batch: running items are abandoned, pending ones never start'],
    ['suspend', 'Suspend a batch: no new items start until it is resumed'],
    ['resume', 'Resume a suspended batch'],
    ['retry', 'Re-run the failed items of a finished batch'],
  ] as const) {
    app.openapi(actionRoute(action, summary), async (c) => {
      const row = await runBatchAction(deps, deps.tenantOf(c), c.req.valid('param').id, action);
      return c.json((await loadBatchView(store, row)) as never, 200);
    });
  }

  app.openapi(patchRoute, async (c) => {
    const tenantId = deps.tenantOf(c);
    const id = c.req.valid('param').id;
    const patch = c.req.valid('json');
    let row = await store.read(getBatch(tenantId, id));
    if (!row) throw notFound('batch');
    if (patch.priority !== undefined) {
      row = await store.write(setBatchPriority(tenantId, id, patch.priority));
      deps.notify(id);
    }
    return c.json((await loadBatchView(store, row)) as never, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const deleted = await store.write(deleteBatches(deps.tenantOf(c), [c.req.valid('param').id], deps.config.sweepChunkItems));
    if (deleted.length === 0) throw notFound('batch');
    await deps.forgetDeleted(deleted);
    return c.body(null, 204);
  });

  app.openapi(deleteManyRoute, async (c) => {
    const tenantId = deps.tenantOf(c);
    const selector = parseLabelSelector(c.req.valid('query').labelSelector);
    const deleted = await store.write(deleteMatching(tenantId, selector, deps.config.sweepChunkItems));
    await deps.forgetDeleted(deleted);
    return c.json({ deleted: deleted.length }, 200);
  });

  return app;
}

/**
 * A client's action on one of its batches, as POST /v1/batches/{id}/{action} and the dashboard
 * do it: the store transition (404/409 as NotFoundError/TransitionError), then Redis and the
 * dispatcher are told.
 */
export async function runBatchAction(deps: ApiDeps, tenantId: string, id: string, action: BatchAction): Promise<BatchRow> {
  if (action === 'retry') refuseKubernetesRetry(await deps.store.read(getBatch(tenantId, id)));
  const row = await deps.store.write(action === 'retry' ? retryWithinQuotas(tenantId, id, deps.config.quotas, deps.config.sweepChunkItems) : applyBatchAction(tenantId, id, action, Date.now(), deps.config.sweepChunkItems));
  if (action === 'cancel' || action === 'suspend') await deps.haltInRedis([id], action === 'cancel' ? HALT_STOP : HALT_PAUSE);
  deps.notify(id);
  return row;
}

/**
 * A retry runs the batch's failed and cancelled items again: they count against the tenant's
 * submission rate (items, no new batch), checked after the batch row is locked (the order every
 * operation that records usage takes its locks in) and refused before anything moves.
 */
function* retryWithinQuotas(tenantId: string, id: string, quotaDefaults: Quotas, chunkItems: number): Op<BatchRow> {
  const row = yield* lockBatch(id);
  if (row && row.tenantId === tenantId && isFinalPhase(row.phase as Phase) && row.phase !== 'Cancelled') {
    const items = row.failed + row.cancelled;
    if (items > 0) yield* admitSubmission(tenantId, quotaDefaults, { batches: 0, items, storedItems: 0 }, Date.now());
  }
  return yield* applyBatchAction(tenantId, id, 'retry', Date.now(), chunkItems);
}

/**
 * Deletes the tenant's batches matching a selector, chosen and deleted (or, past one chunk of
 * items, hidden and left to the sweeper) in one transaction.
 */
function* deleteMatching(tenantId: string, selector: LabelRequirement[], chunkItems: number): Op<DeletedBatch[]> {
  return yield* deleteBatches(tenantId, yield* selectBatchIds(tenantId, selector), chunkItems);
}

/**
 * A finished Job cannot run again, and an Indexed Job cannot be told to run only some of its
 * indexes: re-running failed items of a Kubernetes batch is a new batch of those items.
 */
function refuseKubernetesRetry(row: BatchRow | undefined): void {
  if (!row) return;
  const runtime = parseHeader(row).runtime;
  if (runtime === 'queue') return;
  throw problem(409, 'conflict', 'Conflict', `cannot retry a batch of runtime "${runtime}": its Jobs have finished; submit the failed items (GET /v1/batches/${row.id}/items?status=failed) as a new batch`);
}

export function isNdjson(contentType: string | undefined): boolean {
  // Only the media type the route declares: the route's body gate refuses any other with 415.
  return !!contentType && /^application\/x-ndjson\b/i.test(contentType);
}
