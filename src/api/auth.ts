import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { requiredScope, type Scope } from '../domain/scopes.js';
import { apiKeyCacheOf } from './api-key-cache.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { problem } from './problems.js';

/**
 * Who a /v1 request is: a tenant's API key (with its scopes), the server's admin key
 * (FANOUT_ADMIN_KEY, on /v1/admin and /v1/audit-events only), or a batch-scoped worker token
 * (checked by the routes that take one). The key's row is read on every request, so a revoked
 * key, an expired one or a disabled tenant is refused by every API replica on its next request.
 *
 * - no key, an unknown, revoked or expired key, a wrong admin key: 401;
 * - a key of a disabled tenant, a key without the scope the call needs, the admin API with no
 *   admin key configured: 403.
 */

export type RequestAuth =
  | { kind: 'key'; keyId: string; tenantId: string; scopes: Scope[] }
  | { kind: 'admin' };

export const unauthorized = (detail: string) => {
  const err = problem(401, 'unauthorized', 'Unauthorized', detail);
  return Object.assign(err, { headers: { 'www-authenticate': 'Bearer realm="fanout"' } });
};

/** Paths the server admin key opens (everything else takes tenants' keys). */
export const isAdminPath = (path: string) => path === '/v1/admin' || path.startsWith('/v1/admin/');

const digest = (s: string) => createHash('sha256').update(s).digest();

export function authenticate(deps: Pick<ApiDeps, 'store' | 'config' | 'keyUsage'>): MiddlewareHandler<ApiEnv> {
  const adminDigest = deps.config.adminKey ? digest(deps.config.adminKey) : null;
  const isAdminKey = (key: string) => adminDigest !== null && timingSafeEqual(digest(key), adminDigest);
  const keys = apiKeyCacheOf(deps.store);
  return async (c, next) => {
    const auth = c.req.header('authorization');
    const m = auth ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
    const path = c.req.path;
    if (isAdminPath(path)) {
      // No credentials is 401 whether or not the admin API is on (RFC 9110: 401 asks for them).
      if (!m) throw unauthorized('the admin API needs the admin key: send Authorization: Bearer <FANOUT_ADMIN_KEY>');
      if (!adminDigest) throw problem(403, 'admin-api-disabled', 'Forbidden', 'the admin API is off on this server: start it with FANOUT_ADMIN_KEY set');
      if (!isAdminKey(m[1])) throw unauthorized('the admin API needs the admin key (FANOUT_ADMIN_KEY); this is not it');
      c.set('auth', { kind: 'admin' });
      return next();
    }
    if (!m) throw unauthorized('missing or malformed Authorization header: send Authorization: Bearer <key>');
    const key = m[1];
    if (key.startsWith('fbt_')) {
      c.set('workerToken', key);
      return next();
    }
    // The server admin reads any tenant's audit log and usage (`?tenant=`) on the tenants' own paths.
    if ((path === '/v1/audit-events' || path === '/v1/usage') && isAdminKey(key)) {
      c.set('auth', { kind: 'admin' });
      return next();
    }
    const found = await keys.identify(key);
    if (!found) throw unauthorized('the API key is not valid');
    if ('refused' in found) {
      if (found.refused === 'tenant-disabled') throw problem(403, 'tenant-disabled', 'Forbidden', "the API key's tenant is disabled");
      throw unauthorized(found.refused === 'revoked' ? 'the API key was revoked' : 'the API key has expired');
    }
    c.set('auth', { kind: 'key', ...found });
    c.set('tenantId', found.tenantId);
    deps.keyUsage?.touch(found.keyId);
    const needed = requiredScope(c.req.method, path);
    if (!found.scopes.includes(needed)) throw insufficientScope(c, needed, found.scopes);
    return next();
  };
}

function insufficientScope(c: Context<ApiEnv>, needed: Scope, has: Scope[]) {
  return problem(
    403,
    'insufficient-scope',
    'Forbidden',
    `${c.req.method} ${c.req.path} needs the "${needed}" scope; this API key has ${has.length ? has.map((s) => `"${s}"`).join(', ') : 'no scope'}`,
    { requiredScope: needed },
  );
}
