import { randomBytes } from 'node:crypto';
import { parseScopes, type Scope } from '../domain/scopes.js';
import { all, get, run, type Op } from './op.js';
import { hashApiKey } from './tenants.js';

/**
 * A tenant's API keys: created with a name, scopes and an optional expiry, listed by prefix,
 * revoked. A key is stored only as its sha256; its plain text is answered once, at creation.
 * Authentication reads the key's row on every request (no cache), so a revocation is seen by
 * every API replica on its next request.
 */

export interface ApiKeyRow {
  id: string;
  tenantId: string;
  name: string | null;
  prefix: string | null;
  scopes: string;
  createdAt: number;
  lastUsedAt: number | null;
  expiresAt: number | null;
  revokedAt: number | null;
}

const KEY_COLUMNS = `id, tenant_id AS "tenantId", name, prefix, scopes, created_at AS "createdAt", last_used_at AS "lastUsedAt", expires_at AS "expiresAt", revoked_at AS "revokedAt"`;

/** Characters of a generated key kept in clear to tell keys apart (`fo_` and 8 more: 48 bits, not enough to guess the rest). */
const PREFIX_LENGTH = 11;

/** Who a request is, once its key is known good. */
export interface KeyIdentity {
  keyId: string;
  tenantId: string;
  scopes: Scope[];
}

/** Why a known key is refused. */
export type KeyRefusal = 'revoked' | 'expired' | 'tenant-disabled';

/**
 * The identity behind a bearer key, a refusal for a known key that may not be used now, or null
 * for an unknown key. Read-only: a GET's authentication never writes.
 */
export function* identifyApiKey(key: string, now = Date.now()): Op<KeyIdentity | { refused: KeyRefusal } | null> {
  return yield* checkedKey('k.key_hash = ?', hashApiKey(key), now);
}

/** The same check by key id: a dashboard session names the key it was opened with. */
export function* identifyApiKeyById(keyId: string, now = Date.now()): Op<KeyIdentity | { refused: KeyRefusal } | null> {
  return yield* checkedKey('k.id = ?', keyId, now);
}

function* checkedKey(where: string, param: string, now: number): Op<KeyIdentity | { refused: KeyRefusal } | null> {
  const row = yield* get<{ id: string; tenantId: string; scopes: string; expiresAt: number | null; revokedAt: number | null; disabledAt: number | null }>(
    `SELECT k.id, k.tenant_id AS "tenantId", k.scopes, k.expires_at AS "expiresAt", k.revoked_at AS "revokedAt", t.disabled_at AS "disabledAt"
       FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE ${where}`,
    param,
  );
  if (!row) return null;
  if (row.revokedAt !== null) return { refused: 'revoked' };
  if (row.expiresAt !== null && row.expiresAt <= now) return { refused: 'expired' };
  if (row.disabledAt !== null) return { refused: 'tenant-disabled' };
  return { keyId: row.id, tenantId: row.tenantId, scopes: parseScopes(row.scopes) };
}

export interface NewApiKey {
  name?: string | null;
  scopes: readonly Scope[];
  /** epoch ms */
  expiresAt?: number | null;
}

/** Creates a key for the tenant; the plain key is in the answer and nowhere else. */
export function* createApiKey(tenantId: string, input: NewApiKey, now = Date.now()): Op<{ row: ApiKeyRow; key: string }> {
  const key = `fo_${randomBytes(32).toString('base64url')}`;
  const id = `k_${randomBytes(8).toString('hex')}`;
  yield* run(
    'INSERT INTO api_keys (id, tenant_id, key_hash, name, prefix, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    id,
    tenantId,
    hashApiKey(key),
    input.name ?? null,
    key.slice(0, PREFIX_LENGTH),
    JSON.stringify(input.scopes),
    now,
    input.expiresAt ?? null,
  );
  return { row: (yield* getApiKey(tenantId, id))!, key };
}

export function* getApiKey(tenantId: string, id: string): Op<ApiKeyRow | undefined> {
  return yield* get<ApiKeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE tenant_id = ? AND id = ?`, tenantId, id);
}

/** Every key of the tenant, revoked ones too, oldest first. */
export function* listApiKeys(tenantId: string): Op<ApiKeyRow[]> {
  return yield* all<ApiKeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id`, tenantId);
}

/** Revokes a key of the tenant (again: unchanged). Undefined when the tenant has no such key. */
export function* revokeApiKey(tenantId: string, id: string, now = Date.now()): Op<ApiKeyRow | undefined> {
  yield* run('UPDATE api_keys SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL', now, tenantId, id);
  return yield* getApiKey(tenantId, id);
}

/**
 * Records when keys were last used (from memory, flushed now and then by the API process: see
 * src/api/key-usage.ts). Never moves a time backwards, so replicas flushing in any order agree.
 */
export function* touchApiKeys(lastUsed: ReadonlyMap<string, number>): Op<void> {
  for (const [id, at] of lastUsed) {
    yield* run('UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)', at, id, at);
  }
}
