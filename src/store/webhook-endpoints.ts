import { all, get, run, type Op } from './op.js';
import { generateSecret } from '../contracts/webhook-secret.js';
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

const COLUMNS = `id, tenant_id AS "tenantId", url, description, events, enabled, disabled_reason AS "disabledReason", secret,
  previous_secret AS "previousSecret", previous_secret_expires_at AS "previousSecretExpiresAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

export function getEndpoint(tenantId: string, id: string): Op<EndpointRow | undefined> {
  return get<EndpointRow>(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE tenant_id = ? AND id = ?`, tenantId, id);
}

export function getEndpointById(id: string): Op<EndpointRow | undefined> {
  return get<EndpointRow>(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE id = ?`, id);
}

export function listEndpoints(tenantId: string): Op<EndpointRow[]> {
  return all<EndpointRow>(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE tenant_id = ? ORDER BY created_at, id`, tenantId);
}

export interface EndpointInput {
  url: string;
  events: string[];
  description?: string | null;
  enabled?: boolean;
}

export function* createEndpoint(tenantId: string, input: EndpointInput, now = Date.now()): Op<EndpointRow> {
  const id = newId('whe');
  yield* run(
    `INSERT INTO webhook_endpoints (id, tenant_id, url, description, events, enabled, secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    id,
    tenantId,
    input.url,
    input.description ?? null,
    JSON.stringify(input.events),
    input.enabled === false ? 0 : 1,
    generateSecret(),
    now,
    now,
  );
  return (yield* getEndpoint(tenantId, id))!;
}

/** Applies the fields given; enabling clears the reason it was disabled. Undefined when not found. */
export function* updateEndpoint(tenantId: string, id: string, patch: Partial<EndpointInput>, now = Date.now()): Op<EndpointRow | undefined> {
  const text = `SELECT ${COLUMNS} FROM webhook_endpoints WHERE tenant_id = ? AND id = ?`;
  const row = yield* get<EndpointRow>({ sqlite: text, postgres: `${text} FOR UPDATE` }, tenantId, id);
  if (!row) return undefined;
  const enabled = patch.enabled ?? Boolean(row.enabled);
  const reason = patch.enabled === true ? null : patch.enabled === false && row.enabled ? 'disabled by a client request' : row.disabledReason;
  yield* run(
    'UPDATE webhook_endpoints SET url = ?, description = ?, events = ?, enabled = ?, disabled_reason = ?, updated_at = ? WHERE id = ?',
    patch.url ?? row.url,
    patch.description === undefined ? row.description : patch.description,
    patch.events ? JSON.stringify(patch.events) : row.events,
    enabled ? 1 : 0,
    reason,
    now,
    id,
  );
  // Deliveries still waiting go to the new address.
  if (patch.url) yield* run("UPDATE webhook_deliveries SET url = ? WHERE endpoint_id = ? AND status = 'pending'", patch.url, id);
  return yield* getEndpoint(tenantId, id);
}

export function* deleteEndpoint(tenantId: string, id: string): Op<boolean> {
  return (yield* run('DELETE FROM webhook_endpoints WHERE tenant_id = ? AND id = ?', tenantId, id)) > 0;
}

/** A new secret; the old one keeps signing until `now + overlapMs`. Returns the new secret. */
export function* rotateEndpointSecret(tenantId: string, id: string, overlapMs: number, now = Date.now()): Op<{ secret: string; previousSecretExpiresAt: number } | undefined> {
  const secret = generateSecret();
  const expires = now + overlapMs;
  const changed = yield* run(
    'UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = ?, secret = ?, updated_at = ? WHERE tenant_id = ? AND id = ?',
    expires,
    secret,
    now,
    tenantId,
    id,
  );
  return changed > 0 ? { secret, previousSecretExpiresAt: expires } : undefined;
}

/** Disables an endpoint the receiver told us is gone (410), recording why. */
export function* disableEndpoint(id: string, reason: string, now = Date.now()): Op<void> {
  yield* run('UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?', reason, now, id);
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

/** The tenant's batch-webhook secret (every tenant gets one with its first key; see ensureBatchWebhookSecret). */
export function readBatchWebhookSecret(tenantId: string): Op<BatchSecretRow | undefined> {
  return get<BatchSecretRow>(
    'SELECT secret, previous_secret AS "previousSecret", previous_secret_expires_at AS "previousSecretExpiresAt", created_at AS "createdAt" FROM webhook_batch_secrets WHERE tenant_id = ?',
    tenantId,
  );
}

/** Creates the tenant's batch-webhook secret unless it has one; returns it. */
export function* ensureBatchWebhookSecret(tenantId: string, now = Date.now()): Op<BatchSecretRow> {
  yield* run('INSERT INTO webhook_batch_secrets (tenant_id, secret, created_at) VALUES (?, ?, ?) ON CONFLICT (tenant_id) DO NOTHING', tenantId, generateSecret(), now);
  return (yield* readBatchWebhookSecret(tenantId))!;
}

/** Gives every tenant without a batch-webhook secret one (tenants made before secrets came with keys). */
export function* backfillBatchWebhookSecrets(now = Date.now()): Op<void> {
  const missing = yield* all<{ id: string }>('SELECT id FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM webhook_batch_secrets s WHERE s.tenant_id = t.id)');
  for (const t of missing) yield* ensureBatchWebhookSecret(t.id, now);
}

export function* rotateBatchWebhookSecret(tenantId: string, overlapMs: number, now = Date.now()): Op<BatchSecretRow> {
  yield* ensureBatchWebhookSecret(tenantId, now);
  yield* run(
    'UPDATE webhook_batch_secrets SET previous_secret = secret, previous_secret_expires_at = ?, secret = ? WHERE tenant_id = ?',
    now + overlapMs,
    generateSecret(),
    tenantId,
  );
  return (yield* readBatchWebhookSecret(tenantId))!;
}
