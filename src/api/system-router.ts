import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { ApiDeps, ApiEnv } from './deps.js';

/** Liveness, readiness and Prometheus metrics: no authentication, nothing tenant-specific. */
export function systemRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>();

  app.openapi(
    createRoute({ method: 'get', path: '/healthz', operationId: 'getHealth', tags: ['System'], summary: 'Liveness', security: [], responses: { 200: { description: 'The process is up', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } } } }),
    (c) => c.json({ status: 'ok' as const }, 200),
  );

  const readiness = z.object({ status: z.enum(['ready', 'unavailable']), store: z.boolean(), redis: z.boolean() });
  app.openapi(
    createRoute({
      method: 'get',
      path: '/readyz',
      operationId: 'getReadiness',
      tags: ['System'],
      security: [],
      summary: 'Readiness: the store and Redis are reachable',
      responses: {
        200: { description: 'Ready', content: { 'application/json': { schema: readiness } } },
        503: { description: 'Not ready', content: { 'application/json': { schema: readiness } } },
      },
    }),
    async (c) => {
      const r = await deps.ready();
      const ok = r.store && r.redis;
      return c.json({ status: ok ? ('ready' as const) : ('unavailable' as const), ...r }, ok ? 200 : 503);
    },
  );

  app.openapi(
    createRoute({ method: 'get', path: '/metrics', operationId: 'getMetrics', tags: ['System'], summary: 'Prometheus metrics', security: [], responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } } }),
    async (c) => {
      const text = await deps.metrics.registry.metrics();
      return c.text(text, 200, { 'content-type': deps.metrics.registry.contentType });
    },
  );

  return app;
}
