import { apiKeyCacheOf } from './api-key-cache.js';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { createApiKey, listApiKeys, revokeApiKey } from '../store/api-keys.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { notFound, problem, requireJsonBody } from './problems.js';
import { problemResponse } from './schemas.js';
import { apiKeyCreatedSchema, apiKeyListSchema, apiKeySpecSchema, apiKeyView, futureExpiry, keyIdParam } from './tenant-schemas.js';

/**
 * /v1/api-keys: a tenant's own keys, managed with one of its admin-scoped keys (the scope check
 * is in src/api/auth.ts). The same calls as the server admin's /v1/admin/tenants/{id}/api-keys.
 */

const tags = ['Keys'];
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });
const underScoped = problemResponse('The key lacks the admin scope');

const routes = {
  create: createRoute({ method: 'post', path: '/v1/api-keys', operationId: 'createApiKey', tags, summary: 'Create an API key of your tenant (the key is answered once)', request: { body: { required: true, content: { 'application/json': { schema: apiKeySpecSchema } } } }, responses: { 201: json(apiKeyCreatedSchema, 'Created'), 403: underScoped, 422: problemResponse('Invalid name, scopes or expiresAt') } }),
  list: createRoute({ method: 'get', path: '/v1/api-keys', operationId: 'listApiKeys', tags, summary: "Your tenant's API keys, revoked ones too (by prefix; never the key)", responses: { 200: json(apiKeyListSchema, 'The keys'), 403: underScoped } }),
  revoke: createRoute({ method: 'delete', path: '/v1/api-keys/{keyId}', operationId: 'deleteApiKey', tags, summary: 'Revoke a key of your tenant: refused by every API replica within a second', request: { params: keyIdParam }, responses: { 204: { description: 'Revoked' }, 403: underScoped, 404: problemResponse('No such key'), 409: problemResponse('The key making the request: a key does not revoke itself'), 422: problemResponse('A keyId that cannot be one (too long)') } }),
};

export function apiKeysRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });
  const { store } = deps;
  app.use('/v1/api-keys', requireJsonBody(['POST']));

  app.openapi(routes.create, async (c) => {
    const tenantId = deps.tenantOf(c);
    const spec = c.req.valid('json');
    const expiresAt = futureExpiry(spec.expiresAt);
    const { row, key } = await store.write(createApiKey(tenantId, { name: spec.name, scopes: spec.scopes, expiresAt }));
    return c.json({ ...apiKeyView(row), key }, 201, { location: `/v1/api-keys/${row.id}` });
  });
  app.openapi(routes.list, async (c) => c.json({ items: (await store.read(listApiKeys(deps.tenantOf(c)))).map(apiKeyView) }, 200));
  app.openapi(routes.revoke, async (c) => {
    const { keyId } = c.req.valid('param');
    // A tenant that revoked the key it works with could lock itself out of its own keys.
    const auth = c.get('auth');
    if (auth?.kind === 'key' && auth.keyId === keyId) {
      throw problem(409, 'conflict', 'Conflict', 'a key does not revoke itself: revoke it with another admin-scoped key of the tenant, or through the admin API');
    }
    const revoked = await store.write(revokeApiKey(deps.tenantOf(c), keyId));
    apiKeyCacheOf(store).forgetAll();
    if (!revoked) throw notFound('API key');
    return c.body(null, 204);
  });
  return app;
}
