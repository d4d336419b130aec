import { createHash, randomBytes } from 'node:crypto';
import { run, value, type Op } from './op.js';
import { ensureBatchWebhookSecret } from './webhook-endpoints.js';

/** sha256 is enough at rest for long random keys; it keeps authentication cheap per request. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function generateApiKey(): string {
  return `fo_${randomBytes(24).toString('base64url')}`;
}

/** Makes sure `key` exists; a new key gets a tenant of its own. Returns the key's tenant id. */
export function* ensureApiKey(key: string, tenantName = 'default'): Op<string> {
  const found = yield* authenticateApiKey(key);
  if (found) return found;
  return yield* createTenantForKey(key, tenantName);
}

/**
 * Creates a tenant owning `key` (an admin operation: the CLI and tests use it). Several replicas
 * starting at once with the same key: the key's unique hash lets one insert win; the others
 * find its tenant.
 */
export function* createTenantForKey(key: string, tenantName: string): Op<string> {
  const now = Date.now();
  const tenantId = `t_${randomBytes(8).toString('hex')}`;
  yield* run('INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)', tenantId, tenantName, now);
  const added = yield* run(
    'INSERT INTO api_keys (id, tenant_id, key_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING',
    `k_${randomBytes(8).toString('hex')}`,
    tenantId,
    hashApiKey(key),
    now,
  );
  if (added > 0) {
    yield* ensureBatchWebhookSecret(tenantId, now);
    return tenantId;
  }
  yield* run('DELETE FROM tenants WHERE id = ?', tenantId);
  return (yield* authenticateApiKey(key))!;
}

/** Resolves a bearer key to its tenant, or null. */
export function* authenticateApiKey(key: string): Op<string | null> {
  return (yield* value<string>('SELECT tenant_id FROM api_keys WHERE key_hash = ?', hashApiKey(key))) ?? null;
}

/** A server secret kept in the store (signs batch-scoped worker tokens), created once. */
export function* serverSecret(): Op<string> {
  yield* run("INSERT INTO settings (key, value) VALUES ('server-secret', ?) ON CONFLICT (key) DO NOTHING", randomBytes(32).toString('hex'));
  return (yield* value<string>("SELECT value FROM settings WHERE key = 'server-secret'"))!;
}

/** Whether any API key exists (a server without one cannot serve any client). */
export function* hasAnyApiKey(): Op<boolean> {
  return (yield* value<number>('SELECT 1 FROM api_keys LIMIT 1')) !== undefined;
}
