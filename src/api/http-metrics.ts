import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { HttpDurations } from '../contracts/api-metrics.js';
import { methodLabel, routeTemplate, UNMATCHED_ROUTE } from '../domain/http-route-label.js';

type RouterRoute = ReturnType<typeof matchedRoutes>[number];

/**
 * Times every request into `fanout_http_request_duration_seconds{method, route, status}`.
 * Registered first, so the time includes authentication and body checks; it ends when the
 * handler (or the error or not-found handler) has produced the response's status and headers.
 * A streamed body (SSE events, NDJSON results) is sent after that and is not included: the
 * histogram measures latency, not how long a client keeps a stream open.
 */
export function httpMetrics(durations: HttpDurations): MiddlewareHandler {
  // Route objects are created once, when the app is built: their label is worked out once.
  const templates = new WeakMap<RouterRoute, string>();
  const templateOf = (route: RouterRoute) => {
    let t = templates.get(route);
    if (t === undefined) {
      t = routeTemplate(route.path);
      templates.set(route, t);
    }
    return t;
  };
  return async (c, next) => {
    const start = performance.now();
    await next();
    durations.observe(
      { method: methodLabel(c.req.method), route: routeLabel(matchedRoutes(c), templateOf), status: c.res.status },
      (performance.now() - start) / 1000,
    );
  };
}

/**
 * The endpoint the request matched: the first matched route registered for a method (middleware
 * is registered with `use`, method ALL). The first is the one that answers, as Hono runs a
 * method's handlers in registration order and a handler does not call next().
 */
function routeLabel(routes: RouterRoute[], templateOf: (r: RouterRoute) => string): string {
  for (const r of routes) if (r.method !== 'ALL') return templateOf(r);
  return UNMATCHED_ROUTE;
}
