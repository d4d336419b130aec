import { createHash, randomBytes } from 'node:crypto';
import { parseQuotaOverrides, type QuotaOverrides } from '../domain/quotas.js';
import { prefixedId } from './ids.js';
import { all, get, run, value, type Op } from './op.js';
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

export interface TenantRow {
  id: string;
  name: string;
  weight: number;
  /** JSON overrides; read with parseQuotaOverrides */
  quotas: string;
  disabledAt: number | null;
  createdAt: number;
  updatedAt: number | null;
}

const TENANT_COLUMNS = `id, name, weight, quotas, disabled_at AS "disabledAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

export interface NewTenant {
  name: string;
  weight?: number;
  quotas?: QuotaOverrides;
}

/** Creates a tenant with no key yet (the admin API adds keys), and its batch-webhook secret. */
export function* createTenant(input: NewTenant, now = Date.now()): Op<TenantRow> {
  const id = prefixedId('t', now);
  yield* run(
    'INSERT INTO tenants (id, name, weight, quotas, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    id,
    input.name,
    input.weight ?? 1,
    JSON.stringify(input.quotas ?? {}),
    now,
    now,
  );
  yield* ensureBatchWebhookSecret(id, now);
  return (yield* getTenant(id))!;
}

export function* getTenant(id: string): Op<TenantRow | undefined> {
  return yield* get<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE id = ?`, id);
}

/** Tenants in id order, disabled ones too; one page and whether more follow. */
export function* listTenants(q: { limit: number; after?: string }): Op<{ rows: TenantRow[]; more: boolean }> {
  const rows = q.after
    ? yield* all<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE id > ? ORDER BY id LIMIT ?`, q.after, q.limit + 1)
    : yield* all<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenants ORDER BY id LIMIT ?`, q.limit + 1);
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
}

export interface TenantPatch {
  name?: string;
  weight?: number;
  /** merged into the stored overrides: a number sets a quota, null makes it unlimited */
  quotas?: QuotaOverrides;
  disabled?: boolean;
}

/**
 * Changes a tenant in one transaction (the quota merge reads and writes the row under the same
 * transaction). Disabling refuses every key of the tenant from the next request on; enabling
 * again lets them in again (revoked and expired keys stay refused). Undefined when no such tenant.
 */
export function* updateTenant(id: string, patch: TenantPatch, now = Date.now()): Op<TenantRow | undefined> {
  const row = yield* getTenant(id);
  if (!row) return undefined;
  const quotas = patch.quotas ? { ...parseQuotaOverrides(row.quotas), ...patch.quotas } : parseQuotaOverrides(row.quotas);
  const disabledAt = patch.disabled === undefined ? row.disabledAt : patch.disabled ? (row.disabledAt ?? now) : null;
  yield* run(
    'UPDATE tenants SET name = ?, weight = ?, quotas = ?, disabled_at = ?, updated_at = ? WHERE id = ?',
    patch.name ?? row.name,
    patch.weight ?? row.weight,
    JSON.stringify(quotas),
    disabledAt,
    now,
    id,
  );
  return yield* getTenant(id);
}
