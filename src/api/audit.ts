import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { isMutating, requiredScope } from '../domain/scopes.js';
import { recordAuditEvent } from '../store/audit-events.js';
import type { ApiDeps, ApiEnv } from './deps.js';

/**
 * Records every mutating /v1 call made with an API key or the admin key, after it was answered
 * (so its status is known), including refusals after authentication (a missing scope, 404, 422).
 * Calls without a valid key and worker-token calls (result uploads) are not recorded. The event
 * holds the route and path, never the body. Its write is a transaction of its own: a failure to
 * record is logged and does not change the answer.
 */
export function auditMutations(deps: Pick<ApiDeps, 'store' | 'logger'>): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    await next();
    if (!isMutating(c.req.method)) return;
    const auth = c.get('auth');
    if (!auth) return;
    const path = c.req.path;
    const event = {
      tenantId: auth.kind === 'key' ? auth.tenantId : (c.get('auditTenantId') ?? /^\/v1\/admin\/tenants\/([^/]+)/.exec(path)?.[1] ?? null),
      keyId: auth.kind === 'key' ? auth.keyId : null,
      scope: auth.kind === 'key' ? requiredScope(c.req.method, path) : 'server-admin',
      action: `${c.req.method} ${routeOf(c)}`,
      target: path,
      status: c.res.status,
      sourceAddress: sourceAddress(c),
      requestId: c.get('requestId') ?? null,
      at: Date.now(),
    };
    try {
      await deps.store.write(recordAuditEvent(event));
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message, action: event.action, requestId: event.requestId }, 'could not record an audit event');
    }
  };
}

/** The route's pattern as the OpenAPI document writes it (`/v1/batches/{id}`), or `(no route)`. */
function routeOf(c: Context): string {
  // The route's own handler, not a middleware (those are registered for every method).
  const route = [...matchedRoutes(c)].reverse().find((r) => r.method === c.req.method);
  if (!route) return '(no route)';
  return route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The peer address of the connection (a proxy's, behind one: X-Forwarded-For is not trusted). */
function sourceAddress(c: Context): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}
