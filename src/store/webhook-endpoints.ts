import type { StoreHandle } from './db.js';
import { generateSecret } from '../webhooks/signer.js';
import { newId } from './webhook-events.js';

/**
 * Tenant webhook endpoints and the tenant's batch-webhook secret. Every query is scoped by
 * tenant: another tenant's id finds nothing. Secrets leave this module only in the answer to a
 * creation or a rotation (and for signing, to the deliverer).
 */

export interface EndpointRow {
  id: string;
  tenantId: string;
  url: string;
  description: string | null;
  events: string;
  enabled: number;
  disabledReason: string | null;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: number | null;
  createdAt: number;
  updatedAt: number;
}

const COLUMNS = `id, tenant_id AS tenantId, url, description, events, enabled, disabled_reason AS disabledReason, secret,
  previous_secret AS previousSecret, previous_secret_expires_at AS previousSecretExpiresAt, created_at AS createdAt, updated_at AS updatedAt`;

export function getEndpoint(store: StoreHandle, tenantId: string, id: string): EndpointRow | undefined {
  return store.sqlite.prepare(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE tenant_id = ? AND id = ?`).get(tenantId, id) as EndpointRow | undefined;
}

export function getEndpointById(store: StoreHandle, id: string): EndpointRow | undefined {
  return store.sqlite.prepare(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE id = ?`).get(id) as EndpointRow | undefined;
}

export function listEndpoints(store: StoreHandle, tenantId: string): EndpointRow[] {
  return store.sqlite.prepare(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE tenant_id = ? ORDER BY created_at, id`).all(tenantId) as EndpointRow[];
}

export interface EndpointInput {
  url: string;
  events: string[];
  description?: string | null;
  enabled?: boolean;
}

export function createEndpoint(store: StoreHandle, tenantId: string, input: EndpointInput, now = Date.now()): EndpointRow {
  const id = newId('whe');
  store.sqlite
    .prepare(
      `INSERT INTO webhook_endpoints (id, tenant_id, url, description, events, enabled, secret, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(id, tenantId, input.url, input.description ?? null, JSON.stringify(input.events), input.enabled === false ? 0 : 1, generateSecret(), now, now);
  return getEndpoint(store, tenantId, id)!;
}

/** Applies the fields given; enabling clears the reason it was disabled. Undefined when not found. */
export function updateEndpoint(store: StoreHandle, tenantId: string, id: string, patch: Partial<EndpointInput>, now = Date.now()): EndpointRow | undefined {
  return store.sqlite.transaction(() => {
    const row = getEndpoint(store, tenantId, id);
    if (!row) return undefined;
    const enabled = patch.enabled ?? Boolean(row.enabled);
    const reason = patch.enabled === true ? null : patch.enabled === false && row.enabled ? 'disabled by a client request' : row.disabledReason;
    store.sqlite
      .prepare('UPDATE webhook_endpoints SET url = ?, description = ?, events = ?, enabled = ?, disabled_reason = ?, updated_at = ? WHERE id = ?')
      .run(patch.url ?? row.url, patch.description === undefined ? row.description : patch.description, patch.events ? JSON.stringify(patch.events) : row.events, enabled ? 1 : 0, reason, now, id);
    if (patch.url) {
      // Deliveries still waiting go to the new address.
      store.sqlite.prepare("UPDATE webhook_deliveries SET url = ? WHERE endpoint_id = ? AND status = 'pending'").run(patch.url, id);
    }
    return getEndpoint(store, tenantId, id);
  })();
}

export function deleteEndpoint(store: StoreHandle, tenantId: string, id: string): boolean {
  return store.sqlite.prepare('DELETE FROM webhook_endpoints WHERE tenant_id = ? AND id = ?').run(tenantId, id).changes > 0;
}

/** A new secret; the old one keeps signing until `now + overlapMs`. Returns the new secret. */
export function rotateEndpointSecret(store: StoreHandle, tenantId: string, id: string, overlapMs: number, now = Date.now()): { secret: string; previousSecretExpiresAt: number } | undefined {
  const secret = generateSecret();
  const expires = now + overlapMs;
  const changed = store.sqlite
    .prepare('UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = ?, secret = ?, updated_at = ? WHERE tenant_id = ? AND id = ?')
    .run(expires, secret, now, tenantId, id).changes;
  return changed > 0 ? { secret, previousSecretExpiresAt: expires } : undefined;
}

/** Disables an endpoint the receiver told us is gone (410), recording why. */
export function disableEndpoint(store: StoreHandle, id: string, reason: string, now = Date.now()): void {
  store.sqlite.prepare('UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?').run(reason, now, id);
}

/** The secrets that sign now: the current one, and the previous one during a rotation's overlap. */
export function signingSecrets(row: { secret: string; previousSecret: string | null; previousSecretExpiresAt: number | null }, now = Date.now()): string[] {
  return row.previousSecret && (row.previousSecretExpiresAt ?? 0) > now ? [row.secret, row.previousSecret] : [row.secret];
}

export interface BatchSecretRow {
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: number | null;
  createdAt: number;
}

/** The tenant's batch-webhook secret, created on first use. */
export function batchWebhookSecret(store: StoreHandle, tenantId: string, now = Date.now()): BatchSecretRow {
  const read = () =>
    store.sqlite
      .prepare('SELECT secret, previous_secret AS previousSecret, previous_secret_expires_at AS previousSecretExpiresAt, created_at AS createdAt FROM webhook_batch_secrets WHERE tenant_id = ?')
      .get(tenantId) as BatchSecretRow | undefined;
  const found = read();
  if (found) return found;
  store.sqlite.prepare('INSERT OR IGNORE INTO webhook_batch_secrets (tenant_id, secret, created_at) VALUES (?, ?, ?)').run(tenantId, generateSecret(), now);
  return read()!;
}

export function rotateBatchWebhookSecret(store: StoreHandle, tenantId: string, overlapMs: number, now = Date.now()): BatchSecretRow {
  return store.sqlite.transaction(() => {
    batchWebhookSecret(store, tenantId, now);
    store.sqlite
      .prepare('UPDATE webhook_batch_secrets SET previous_secret = secret, previous_secret_expires_at = ?, secret = ? WHERE tenant_id = ?')
      .run(now + overlapMs, generateSecret(), tenantId);
    return batchWebhookSecret(store, tenantId, now);
  })();
}
