/**
 * Labels of `fanout_http_request_duration_seconds` (docs/operations.md "Metrics"). Every label
 * value comes from a bounded set, whatever a client sends: a route is its template, never the
 * raw path (an id in a label would make one series per batch), and a method outside HTTP's own
 * is `other`.
 */

/** The route label of a request no route matched (404, 405). */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * A router path as the OpenAPI document writes it: Hono's `/v1/batches/:id` (or `:id{regex}`)
 * becomes `/v1/batches/{id}`; a wildcard stays `*`.
 */
export function routeTemplate(routerPath: string): string {
  return routerPath.replace(/:([A-Za-z0-9_]+)(\{(?:[^{}]|\{[^{}]*\})*\})?\??/g, '{$1}');
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/** The method label: the request's method when HTTP defines it, else `other`. */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'other';
}
