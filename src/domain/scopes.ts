/**
 * What an API key may do. Every /v1 route needs exactly one scope:
 * - `admin`: the tenant's API keys, webhook endpoints and the secrets that sign webhooks
 *   (reading them too: their answers carry secrets or manage who is called), and its audit log;
 * - `write`: every other call that changes something (submit, cancel, suspend, resume, retry,
 *   delete, PATCH, schedules, result uploads with a key);
 * - `read`: every other GET.
 * A key holds any non-empty set of them; one scope never implies another.
 */
export const SCOPES = ['read', 'write', 'admin'] as const;

export type Scope = (typeof SCOPES)[number];

const ADMIN_PATHS = [/^\/v1\/api-keys(\/|$)/, /^\/v1\/webhook-endpoints(\/|$)/, /^\/v1\/batch-webhook-secret(\/|$)/, /^\/v1\/webhook-deliveries\/[^/]+\/redeliver$/, /^\/v1\/audit-events$/];

/** The scope a call to `path` with `method` needs. */
export function requiredScope(method: string, path: string): Scope {
  if (ADMIN_PATHS.some((p) => p.test(path))) return 'admin';
  return isMutating(method) ? 'write' : 'read';
}

/** Calls that change state, and so are audited. */
export function isMutating(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}

/** Scopes as stored (JSON array), keeping only known ones: a row from a newer version never widens rights. */
export function parseScopes(json: string): Scope[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return [];
  }
  return Array.isArray(parsed) ? SCOPES.filter((s) => parsed.includes(s)) : [];
}
