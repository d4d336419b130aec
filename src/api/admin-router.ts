import { apiKeyCacheOf } from './api-key-cache.js';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { createApiKey, listApiKeys, revokeApiKey } from '../store/api-keys.js';
import { createTenant, getTenant, listTenants, updateTenant } from '../store/tenants.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { notFound, requireJsonBody } from './problems.js';
import { cursorQuery, problemResponse as problemAnswer } from './schemas.js';
import {
  apiKeyCreatedSchema, apiKeyListSchema, apiKeySpecSchema, apiKeyView, futureExpiry, keyIdParam, tenantIdParam, tenantListSchema, tenantPatchSchema, tenantSchema, tenantSpecSchema, tenantView,
} from './tenant-schemas.js';
import { decodeCursor, encodeCursor } from './views.js';

/**
 * /v1/admin: the server admin's calls, with FANOUT_ADMIN_KEY (src/api/auth.ts checks it before
 * any of these run). Tenants are never deleted: DELETE disables one (its keys are refused, its
 * data stays) and PATCH {"disabled": false} enables it again.
 */

const tags = ['Tenants'];
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });
const body = <T extends z.ZodType>(schema: T) => ({ body: { required: true, content: { 'application/json': { schema } } } });
const forbidden = problemAnswer('The admin API is off (no FANOUT_ADMIN_KEY on the server)');

const routes = {
  create: createRoute({ method: 'post', path: '/v1/admin/tenants', operationId: 'createTenant', tags, summary: 'Create a tenant (then give it keys)', request: body(tenantSpecSchema), responses: { 201: json(tenantSchema, 'Created'), 403: forbidden, 422: problemAnswer('Invalid name, weight or quotas') } }),
  list: createRoute({ method: 'get', path: '/v1/admin/tenants', operationId: 'listTenants', tags, summary: 'List tenants in id order, disabled ones too', request: { query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100), cursor: cursorQuery }) }, responses: { 200: json(tenantListSchema, 'A page of tenants'), 403: forbidden } }),
  get: createRoute({ method: 'get', path: '/v1/admin/tenants/{id}', operationId: 'getTenant', tags, summary: 'Get a tenant', request: { params: tenantIdParam }, responses: { 200: json(tenantSchema, 'The tenant'), 403: forbidden, 404: problemAnswer('No such tenant'), 422: problemAnswer('An id that cannot be one (too long)') } }),
  update: createRoute({ method: 'patch', path: '/v1/admin/tenants/{id}', operationId: 'updateTenant', tags, summary: 'Change name, weight, quotas (merged) or disabled', request: { params: tenantIdParam, ...body(tenantPatchSchema) }, responses: { 200: json(tenantSchema, 'The tenant'), 403: forbidden, 404: problemAnswer('No such tenant'), 422: problemAnswer('Invalid change') } }),
  disable: createRoute({ method: 'delete', path: '/v1/admin/tenants/{id}', operationId: 'deleteTenant', tags, summary: 'Disable a tenant: its keys are refused, its data stays (PATCH disabled=false undoes it)', request: { params: tenantIdParam }, responses: { 200: json(tenantSchema, 'The tenant, disabled'), 403: forbidden, 404: problemAnswer('No such tenant'), 422: problemAnswer('An id that cannot be one (too long)') } }),
  createKey: createRoute({ method: 'post', path: '/v1/admin/tenants/{id}/api-keys', operationId: 'createTenantApiKey', tags, summary: "Create an API key for a tenant (the key is answered once)", request: { params: tenantIdParam, ...body(apiKeySpecSchema) }, responses: { 201: json(apiKeyCreatedSchema, 'Created'), 403: forbidden, 404: problemAnswer('No such tenant'), 422: problemAnswer('Invalid name, scopes or expiresAt') } }),
  listKeys: createRoute({ method: 'get', path: '/v1/admin/tenants/{id}/api-keys', operationId: 'listTenantApiKeys', tags, summary: "A tenant's API keys, revoked ones too (by prefix; never the key)", request: { params: tenantIdParam }, responses: { 200: json(apiKeyListSchema, 'The keys'), 403: forbidden, 404: problemAnswer('No such tenant'), 422: problemAnswer('An id that cannot be one (too long)') } }),
  revokeKey: createRoute({ method: 'delete', path: '/v1/admin/tenants/{id}/api-keys/{keyId}', operationId: 'deleteTenantApiKey', tags, summary: 'Revoke a key of a tenant: refused by every API replica within a second', request: { params: tenantIdParam.extend(keyIdParam.shape) }, responses: { 204: { description: 'Revoked' }, 403: forbidden, 404: problemAnswer('No such tenant or key'), 422: problemAnswer('An id that cannot be one (too long)') } }),
};

export function adminRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });
  const { store } = deps;
  app.use('/v1/admin/tenants', requireJsonBody(['POST']));
  app.use('/v1/admin/tenants/:id', requireJsonBody(['PATCH']));
  app.use('/v1/admin/tenants/:id/api-keys', requireJsonBody(['POST']));

  app.openapi(routes.create, async (c) => {
    const row = await store.write(createTenant(c.req.valid('json')));
    c.set('auditTenantId', row.id);
    return c.json(tenantView(row), 201, { location: `/v1/admin/tenants/${row.id}` });
  });
  app.openapi(routes.list, async (c) => {
    const q = c.req.valid('query');
    const page = await store.read(listTenants({ limit: q.limit, after: decodeCursor(q.cursor, /^t_[0-9a-z]+$/) }));
    const last = page.rows[page.rows.length - 1];
    return c.json({ items: page.rows.map(tenantView), nextCursor: page.more && last ? encodeCursor(last.id) : null }, 200);
  });
  app.openapi(routes.get, async (c) => {
    const row = await store.read(getTenant(c.req.valid('param').id));
    if (!row) throw notFound('tenant');
    return c.json(tenantView(row), 200);
  });
  app.openapi(routes.update, async (c) => {
    const row = await store.write(updateTenant(c.req.valid('param').id, c.req.valid('json')));
    apiKeyCacheOf(store).forgetAll();
    if (!row) throw notFound('tenant');
    return c.json(tenantView(row), 200);
  });
  app.openapi(routes.disable, async (c) => {
    const row = await store.write(updateTenant(c.req.valid('param').id, { disabled: true }));
    apiKeyCacheOf(store).forgetAll();
    if (!row) throw notFound('tenant');
    return c.json(tenantView(row), 200);
  });
  app.openapi(routes.createKey, async (c) => {
    const { id } = c.req.valid('param');
    const spec = c.req.valid('json');
    const expiresAt = futureExpiry(spec.expiresAt);
    const created = await store.write(createKeyOfTenant(id, { name: spec.name, scopes: spec.scopes, expiresAt }));
    if (!created) throw notFound('tenant');
    return c.json({ ...apiKeyView(created.row), key: created.key }, 201, { location: `/v1/admin/tenants/${id}/api-keys/${created.row.id}` });
  });
  app.openapi(routes.listKeys, async (c) => {
    const keys = await store.read(keysOfTenant(c.req.valid('param').id));
    if (!keys) throw notFound('tenant');
    return c.json({ items: keys.map(apiKeyView) }, 200);
  });
  app.openapi(routes.revokeKey, async (c) => {
    const { id, keyId } = c.req.valid('param');
    const revoked = await store.write(revokeApiKey(id, keyId));
    apiKeyCacheOf(store).forgetAll();
    if (!revoked) throw notFound('API key');
    return c.body(null, 204);
  });
  return app;
}

function* createKeyOfTenant(tenantId: string, input: Parameters<typeof createApiKey>[1]) {
  if (!(yield* getTenant(tenantId))) return undefined;
  return yield* createApiKey(tenantId, input);
}

function* keysOfTenant(tenantId: string) {
  if (!(yield* getTenant(tenantId))) return undefined;
  return yield* listApiKeys(tenantId);
}
