import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { eventFilterSchema, DEFAULT_EVENTS, webhookUrlSchema } from '../domain/webhooks.js';
import { getBatch } from '../store/batch-queries.js';
import { attemptsOf, getDelivery, listDeliveries, redeliver, type DeliveryRow } from '../store/webhook-deliveries.js';
import {
  readBatchWebhookSecret, createEndpoint, deleteEndpoint, getEndpoint, listEndpoints, rotateBatchWebhookSecret, rotateEndpointSecret, updateEndpoint, type EndpointRow,
} from '../store/webhook-endpoints.js';
import { targetRefusal } from '../webhooks/target-check.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { notFound, problem, requireJsonBody, validationProblem } from './problems.js';
import { idParam, problemResponse } from './schemas.js';

/**
 * /v1/webhook-endpoints (tenant-wide endpoints, their secrets and delivery logs), the delivery
 * logs of batches, redelivery, and the tenant's batch-webhook secret. Secrets are answered only
 * by the calls that create them.
 */

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const endpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(z.string()),
    enabled: z.boolean(),
    disabledReason: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'WebhookEndpoint' });
const endpointWithSecretSchema = endpointSchema.extend({ secret: z.string().meta({ description: 'Shown once: store it to verify signatures.' }) }).meta({ id: 'WebhookEndpointCreated' });
const secretSchema = z.object({ secret: z.string(), previousSecretExpiresAt: z.string().nullable() }).meta({ id: 'WebhookSecret' });

const attemptLogSchema = z.object({
  attempt: z.number().int(),
  at: z.string(),
  statusCode: z.number().int().nullable(),
  latencyMs: z.number().int(),
  response: z.string().nullable().meta({ description: 'At most 1 KiB of the response body.' }),
  error: z.string().nullable(),
});
const deliverySchema = z
  .object({
    id: z.string(),
    webhookId: z.string().meta({ description: 'The `webhook-id` header: the same for every attempt of this event.' }),
    eventId: z.string(),
    type: z.string(),
    batchId: z.string(),
    endpointId: z.string().nullable().meta({ description: 'null: the batch\'s own webhook.' }),
    url: z.string(),
    status: z.enum(['pending', 'succeeded', 'failed']),
    nextAttemptAt: z.string().nullable(),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    attempts: z.array(attemptLogSchema),
  })
  .meta({ id: 'WebhookDelivery' });
const deliveryListSchema = z.object({ items: z.array(deliverySchema) }).meta({ id: 'WebhookDeliveryList' });

const endpointBody = z
  .object({ url: webhookUrlSchema, events: eventFilterSchema.optional(), description: z.string().max(500).nullable().optional(), enabled: z.boolean().optional() })
  .strict()
  .meta({ id: 'WebhookEndpointSpec' });
const endpointPatch = endpointBody.partial().strict().meta({ id: 'WebhookEndpointPatch' });
const limitQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) });

const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });

function endpointView(r: EndpointRow) {
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    events: JSON.parse(r.events) as string[],
    enabled: Boolean(r.enabled),
    disabledReason: r.disabledReason,
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt)!,
  };
}

/** Deliveries as the API answers them, with every attempt (read with them). */
function* deliveryViews(rows: DeliveryRow[]) {
  const attempts = yield* attemptsOf(rows.map((r) => r.id));
  return rows.map((d) => ({
    id: d.id,
    webhookId: `msg_${d.eventId}`,
    eventId: d.eventId,
    type: d.type,
    batchId: d.batchId,
    endpointId: d.endpointId,
    url: d.url,
    status: d.status,
    nextAttemptAt: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
    lastError: d.lastError,
    createdAt: iso(d.createdAt)!,
    attempts: (attempts.get(d.id) ?? []).map((a) => ({ attempt: a.attempt, at: iso(a.at)!, statusCode: a.statusCode, latencyMs: a.latencyMs, response: a.response, error: a.error })),
  }));
}

/** 422 naming `pointer` when the URL's host is one webhooks may not call. */
export async function checkWebhookTarget(deps: ApiDeps, url: string, pointer: string): Promise<void> {
  const refusal = await targetRefusal(url, deps.config.webhooks.allow);
  if (refusal) throw validationProblem([{ pointer, detail: refusal }]);
}

const tags = ['Webhooks'];
const routes = {
  create: createRoute({ method: 'post', path: '/v1/webhook-endpoints', operationId: 'createWebhookEndpoint', tags, summary: 'Create a webhook endpoint (its secret is answered once)', request: { body: { required: true, content: { 'application/json': { schema: endpointBody } } } }, responses: { 201: json(endpointWithSecretSchema, 'Created'), 422: problemResponse('Invalid URL, event type, or a refused target') } }),
  list: createRoute({ method: 'get', path: '/v1/webhook-endpoints', operationId: 'listWebhookEndpoints', tags, summary: 'List webhook endpoints', responses: { 200: json(z.object({ items: z.array(endpointSchema) }), 'The endpoints') } }),
  get: createRoute({ method: 'get', path: '/v1/webhook-endpoints/{id}', operationId: 'getWebhookEndpoint', tags, summary: 'Get a webhook endpoint', request: { params: idParam }, responses: { 200: json(endpointSchema, 'The endpoint'), 404: problemResponse('No such endpoint') } }),
  update: createRoute({ method: 'patch', path: '/v1/webhook-endpoints/{id}', operationId: 'updateWebhookEndpoint', tags, summary: 'Change an endpoint (url, events, description, enabled)', request: { params: idParam, body: { required: true, content: { 'application/json': { schema: endpointPatch } } } }, responses: { 200: json(endpointSchema, 'The endpoint'), 404: problemResponse('No such endpoint'), 422: problemResponse('Invalid change') } }),
  remove: createRoute({ method: 'delete', path: '/v1/webhook-endpoints/{id}', operationId: 'deleteWebhookEndpoint', tags, summary: 'Delete an endpoint and its delivery log', request: { params: idParam }, responses: { 204: { description: 'Deleted' }, 404: problemResponse('No such endpoint') } }),
  rotate: createRoute({ method: 'post', path: '/v1/webhook-endpoints/{id}/rotate-secret', operationId: 'rotateWebhookEndpointSecret', tags, summary: 'New secret (answered once); the old one also signs until previousSecretExpiresAt', request: { params: idParam }, responses: { 200: json(secretSchema, 'The new secret'), 404: problemResponse('No such endpoint') } }),
  endpointDeliveries: createRoute({ method: 'get', path: '/v1/webhook-endpoints/{id}/webhook-deliveries', operationId: 'listWebhookEndpointDeliveries', tags, summary: 'Deliveries to an endpoint, newest first, with every attempt', request: { params: idParam, query: limitQuery }, responses: { 200: json(deliveryListSchema, 'Deliveries'), 404: problemResponse('No such endpoint') } }),
  batchDeliveries: createRoute({ method: 'get', path: '/v1/batches/{id}/webhook-deliveries', operationId: 'listBatchWebhookDeliveries', tags, summary: "Webhook deliveries of a batch's events, newest first, with every attempt", request: { params: idParam, query: limitQuery }, responses: { 200: json(deliveryListSchema, 'Deliveries'), 404: problemResponse('No such batch') } }),
  redeliver: createRoute({ method: 'post', path: '/v1/webhook-deliveries/{id}/redeliver', operationId: 'redeliverWebhookDelivery', tags, summary: 'Send a delivery again (same webhook-id), from the start of the retry schedule', request: { params: idParam }, responses: { 202: json(deliverySchema, 'Queued again'), 404: problemResponse('No such delivery'), 409: problemResponse('The endpoint is disabled') } }),
  batchSecret: createRoute({ method: 'get', path: '/v1/batch-webhook-secret', operationId: 'getBatchWebhookSecret', tags, summary: "The secret that signs batches' own webhooks (every tenant has one from its creation)", responses: { 200: json(secretSchema, 'The secret') } }),
  rotateBatchSecret: createRoute({ method: 'post', path: '/v1/batch-webhook-secret/rotate', operationId: 'rotateBatchWebhookSecret', tags, summary: 'New batch-webhook secret; the old one also signs until previousSecretExpiresAt', responses: { 200: json(secretSchema, 'The new secret') } }),
};

export function webhooksRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });
  const { store } = deps;
  const overlap = () => deps.config.webhooks.secretOverlapMs;
  app.use('/v1/webhook-endpoints', requireJsonBody(['POST']));
  app.use('/v1/webhook-endpoints/:id', requireJsonBody(['PATCH']));

  app.openapi(routes.create, async (c) => {
    const tenantId = deps.tenantOf(c);
    const body = c.req.valid('json');
    await checkWebhookTarget(deps, body.url, '/url');
    const row = await store.write(createEndpoint(tenantId, { ...body, events: body.events ?? DEFAULT_EVENTS }));
    return c.json({ ...endpointView(row), secret: row.secret }, 201, { location: `/v1/webhook-endpoints/${row.id}` });
  });
  app.openapi(routes.list, async (c) => c.json({ items: (await store.read(listEndpoints(deps.tenantOf(c)))).map(endpointView) }, 200));
  app.openapi(routes.get, async (c) => {
    const row = await store.read(getEndpoint(deps.tenantOf(c), c.req.valid('param').id));
    if (!row) throw notFound('webhook endpoint');
    return c.json(endpointView(row), 200);
  });
  app.openapi(routes.update, async (c) => {
    const tenantId = deps.tenantOf(c);
    const { id } = c.req.valid('param');
    const patch = c.req.valid('json');
    if (!(await store.read(getEndpoint(tenantId, id)))) throw notFound('webhook endpoint');
    if (patch.url) await checkWebhookTarget(deps, patch.url, '/url');
    const row = await store.write(updateEndpoint(tenantId, id, patch));
    if (!row) throw notFound('webhook endpoint');
    return c.json(endpointView(row), 200);
  });
  app.openapi(routes.remove, async (c) => {
    if (!(await store.write(deleteEndpoint(deps.tenantOf(c), c.req.valid('param').id)))) throw notFound('webhook endpoint');
    return c.body(null, 204);
  });
  app.openapi(routes.rotate, async (c) => {
    const r = await store.write(rotateEndpointSecret(deps.tenantOf(c), c.req.valid('param').id, overlap()));
    if (!r) throw notFound('webhook endpoint');
    return c.json({ secret: r.secret, previousSecretExpiresAt: iso(r.previousSecretExpiresAt) }, 200);
  });
  app.openapi(routes.endpointDeliveries, async (c) => {
    const tenantId = deps.tenantOf(c);
    const { id } = c.req.valid('param');
    const items = await store.read(deliveriesOf(tenantId, { endpointId: id }, c.req.valid('query').limit));
    if (!items) throw notFound('webhook endpoint');
    return c.json({ items }, 200);
  });
  app.openapi(routes.batchDeliveries, async (c) => {
    const tenantId = deps.tenantOf(c);
    const { id } = c.req.valid('param');
    const items = await store.read(deliveriesOf(tenantId, { batchId: id }, c.req.valid('query').limit));
    if (!items) throw notFound('batch');
    return c.json({ items }, 200);
  });
  app.openapi(routes.redeliver, async (c) => {
    const tenantId = deps.tenantOf(c);
    const { id } = c.req.valid('param');
    const d = await store.read(getDelivery(tenantId, id));
    if (!d) throw notFound('webhook delivery');
    if (d.endpointId) {
      const endpoint = await store.read(getEndpoint(tenantId, d.endpointId));
      if (endpoint && !endpoint.enabled) throw problem(409, 'conflict', 'Conflict', `endpoint ${endpoint.id} is disabled (${endpoint.disabledReason ?? 'no reason recorded'}); enable it with PATCH first`);
    }
    const view = await store.write(redeliverWithView(tenantId, id));
    return c.json(view, 202);
  });
  app.openapi(routes.batchSecret, async (c) => {
    // Every tenant gets its secret when it is created (and older ones at start-up): a GET only reads.
    const s = await store.read(readBatchWebhookSecret(deps.tenantOf(c)));
    if (!s) throw notFound('batch-webhook secret');
    const previousActive = s.previousSecret && (s.previousSecretExpiresAt ?? 0) > Date.now();
    return c.json({ secret: s.secret, previousSecretExpiresAt: previousActive ? iso(s.previousSecretExpiresAt) : null }, 200);
  });
  app.openapi(routes.rotateBatchSecret, async (c) => {
    const s = await store.write(rotateBatchWebhookSecret(deps.tenantOf(c), overlap()));
    return c.json({ secret: s.secret, previousSecretExpiresAt: iso(s.previousSecretExpiresAt) }, 200);
  });
  return app;
}

/** The deliveries of one of the tenant's endpoints or batches, newest first; undefined when it has no such owner. */
function* deliveriesOf(tenantId: string, by: { batchId: string } | { endpointId: string }, limit: number) {
  const owner = 'batchId' in by ? yield* getBatch(tenantId, by.batchId) : yield* getEndpoint(tenantId, by.endpointId);
  if (!owner) return undefined;
  return yield* deliveryViews(yield* listDeliveries(tenantId, by, limit));
}

/** Queues a delivery again and answers it as it is now. */
function* redeliverWithView(tenantId: string, id: string) {
  const row = (yield* redeliver(tenantId, id))!;
  return (yield* deliveryViews([row]))[0];
}
