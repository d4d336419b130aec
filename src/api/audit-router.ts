import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { listAuditEvents, type AuditEventRow } from '../store/audit-events.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { notFound } from './problems.js';
import { cursorQuery, problemResponse } from './schemas.js';
import { decodeCursor, encodeCursor } from './views.js';

/**
 * GET /v1/audit-events: the audit log, newest first. A tenant's admin-scoped key reads its own
 * tenant's events; the server admin key (FANOUT_ADMIN_KEY) reads every tenant's, or one with
 * `?tenant=`.
 */

const auditEventSchema = z
  .object({
    id: z.string(),
    tenantId: z.string().nullable(),
    keyId: z.string().nullable().meta({ description: 'The API key used; null for the server admin key' }),
    scope: z.string().meta({ description: 'The scope the call needed (read, write, admin), or server-admin' }),
    action: z.string().meta({ example: 'POST /v1/batches/{id}/cancel' }),
    target: z.string().meta({ example: '/v1/batches/b0mhz8x3k2000a1b2c3d/cancel' }),
    status: z.number().int().meta({ description: 'The HTTP status answered' }),
    sourceAddress: z.string().nullable(),
    requestId: z.string().nullable(),
    at: z.string(),
  })
  .meta({ id: 'AuditEvent' });

const listDef = createRoute({
  method: 'get',
  path: '/v1/audit-events',
  operationId: 'listAuditEvents',
  tags: ['Audit'],
  summary: 'The audit log of mutating calls, newest first',
  description: 'Needs an admin-scoped key (its own tenant) or the server admin key (every tenant, or `tenant`). Kept FANOUT_AUDIT_RETENTION_DAYS days.',
  request: {
    query: z.object({
      tenant: z.string().min(1).max(100).optional().openapi({ description: 'Server admin key only: one tenant' }),
      limit: z.coerce.number().int().min(1).max(500).default(100),
      cursor: cursorQuery,
    }),
  },
  responses: {
    200: { description: 'A page of events', content: { 'application/json': { schema: z.object({ items: z.array(auditEventSchema), nextCursor: z.string().nullable() }).meta({ id: 'AuditEventList' }) } } },
    403: problemResponse('The key lacks the admin scope'),
    404: problemResponse("`tenant` names another tenant than the key's"),
  },
});

const eventView = (e: AuditEventRow) => ({ ...e, at: new Date(e.at).toISOString() });

export function auditRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });
  app.openapi(listDef, async (c) => {
    const q = c.req.valid('query');
    const auth = c.get('auth');
    let tenantId: string | undefined;
    if (auth?.kind === 'admin') tenantId = q.tenant;
    else {
      tenantId = deps.tenantOf(c);
      // Another tenant does not exist for a tenant's key: the same 404 as its batches.
      if (q.tenant !== undefined && q.tenant !== tenantId) throw notFound('tenant');
    }
    const page = await deps.store.read(listAuditEvents({ tenantId, limit: q.limit, before: decodeCursor(q.cursor, /^ae_[0-9a-z]+$/) }));
    const last = page.rows[page.rows.length - 1];
    return c.json({ items: page.rows.map(eventView), nextCursor: page.more && last ? encodeCursor(last.id) : null }, 200);
  });
  return app;
}
