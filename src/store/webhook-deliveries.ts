import { all, get, run, type Op } from './op.js';
import { placeholders } from './columns.js';

/**
 * Webhook deliveries and their attempt log. A delivery is `pending` until an attempt gets a 2xx
 * (`succeeded`) or the retry schedule is used up, the endpoint answers 410 or is disabled
 * (`failed`). Each attempt is recorded in one operation with the delivery's next state.
 */

export interface DeliveryRow {
  id: string;
  tenantId: string;
  eventId: string;
  batchId: string;
  endpointId: string | null;
  url: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  step: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
  type: string;
  payload: string;
}

export interface AttemptLogRow {
  deliveryId: string;
  attempt: number;
  at: number;
  statusCode: number | null;
  latencyMs: number;
  response: string | null;
  error: string | null;
}

const SELECT = `SELECT d.id, d.tenant_id AS "tenantId", d.event_id AS "eventId", d.batch_id AS "batchId", d.endpoint_id AS "endpointId", d.url,
  d.status, d.attempts, d.step, d.next_attempt_at AS "nextAttemptAt", d.last_error AS "lastError", d.created_at AS "createdAt",
  d.updated_at AS "updatedAt", e.type, e.payload
  FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id`;

export function getDeliveryById(id: string): Op<DeliveryRow | undefined> {
  return get<DeliveryRow>(`${SELECT} WHERE d.id = ?`, id);
}

export function getDelivery(tenantId: string, id: string): Op<DeliveryRow | undefined> {
  return get<DeliveryRow>(`${SELECT} WHERE d.tenant_id = ? AND d.id = ?`, tenantId, id);
}

/** Deliveries of a batch or of an endpoint, newest first, at most `limit`. */
export function listDeliveries(tenantId: string, by: { batchId: string } | { endpointId: string }, limit: number): Op<DeliveryRow[]> {
  const [col, value] = 'batchId' in by ? ['d.batch_id', by.batchId] : ['d.endpoint_id', by.endpointId];
  return all<DeliveryRow>(`${SELECT} WHERE d.tenant_id = ? AND ${col} = ? ORDER BY d.created_at DESC, d.id DESC LIMIT ?`, tenantId, value, limit);
}

/** The tenant's latest deliveries (any batch or endpoint), newest first, optionally of one status. */
export function listRecentDeliveries(tenantId: string, q: { status?: DeliveryRow['status']; limit: number; before?: string }): Op<DeliveryRow[]> {
  const where = ['d.tenant_id = ?'];
  const args: unknown[] = [tenantId];
  if (q.status) {
    where.push('d.status = ?');
    args.push(q.status);
  }
  if (q.before) {
    // Ids start with the creation time in base 36, so id order is creation order.
    where.push('d.id < ?');
    args.push(q.before);
  }
  return all<DeliveryRow>(`${SELECT} WHERE ${where.join(' AND ')} ORDER BY d.id DESC LIMIT ?`, ...args, q.limit);
}

export function* attemptsOf(deliveryIds: string[]): Op<Map<string, AttemptLogRow[]>> {
  const out = new Map<string, AttemptLogRow[]>();
  if (deliveryIds.length === 0) return out;
  const rows = yield* all<AttemptLogRow>(
    `SELECT delivery_id AS "deliveryId", attempt, at, status_code AS "statusCode", latency_ms AS "latencyMs", response, error
       FROM webhook_attempts WHERE delivery_id IN (${placeholders(deliveryIds.length)}) ORDER BY attempt`,
    ...deliveryIds,
  );
  for (const r of rows) out.set(r.deliveryId, [...(out.get(r.deliveryId) ?? []), r]);
  return out;
}

/**
 * Pending deliveries due now that are not on the queue (or were put there longer than `requeueMs`
 * ago without an attempt: Redis lost the job). Marks them queued; returns id and attempt number.
 * On PostgreSQL the rows are taken with SKIP LOCKED: two pollers never take the same delivery.
 */
export function* takeDueDeliveries(now: number, requeueMs: number, limit = 500): Op<{ id: string; attempt: number }[]> {
  const text = `SELECT id, attempts FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= ? AND (queued_at IS NULL OR queued_at < ?)
    ORDER BY next_attempt_at LIMIT ?`;
  const rows = yield* all<{ id: string; attempts: number }>({ sqlite: text, postgres: `${text} FOR UPDATE SKIP LOCKED` }, now, now - requeueMs, limit);
  for (const r of rows) yield* run('UPDATE webhook_deliveries SET queued_at = ? WHERE id = ?', now, r.id);
  return rows.map((r) => ({ id: r.id, attempt: r.attempts + 1 }));
}

export interface AttemptOutcome {
  at: number;
  statusCode: number | null;
  latencyMs: number;
  response: string | null;
  error: string | null;
  /** what happens next: done, retry at a time, or give up (with the reason) */
  next: { kind: 'succeeded' } | { kind: 'retry'; at: number } | { kind: 'failed'; reason: string };
}

/**
 * Records attempt number `attempt` of a delivery and its next state, only if the delivery is
 * still pending with that many attempts before it (a duplicate job changes nothing). True when
 * recorded.
 */
export function* recordAttempt(deliveryId: string, attempt: number, o: AttemptOutcome): Op<boolean> {
  const text = 'SELECT tenant_id AS "tenantId", status, attempts FROM webhook_deliveries WHERE id = ?';
  const row = yield* get<{ tenantId: string; status: string; attempts: number }>({ sqlite: text, postgres: `${text} FOR UPDATE` }, deliveryId);
  if (!row || row.status !== 'pending' || row.attempts !== attempt - 1) return false;
  yield* run(
    'INSERT INTO webhook_attempts (delivery_id, tenant_id, attempt, at, status_code, latency_ms, response, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    deliveryId,
    row.tenantId,
    attempt,
    o.at,
    o.statusCode,
    o.latencyMs,
    o.response,
    o.error,
  );
  const status = o.next.kind === 'retry' ? 'pending' : o.next.kind;
  const nextAt = o.next.kind === 'retry' ? o.next.at : null;
  const lastError = o.next.kind === 'failed' ? o.next.reason : o.error ?? (o.statusCode !== null && (o.statusCode < 200 || o.statusCode > 299) ? `HTTP ${o.statusCode}` : null);
  yield* run(
    `UPDATE webhook_deliveries SET status = ?, attempts = ?, step = step + ?, next_attempt_at = ?, queued_at = NULL, last_error = ?, updated_at = ? WHERE id = ?`,
    status,
    attempt,
    o.next.kind === 'succeeded' ? 0 : 1,
    nextAt,
    lastError,
    o.at,
    deliveryId,
  );
  return true;
}

/** Ends a pending delivery without an attempt (its endpoint is disabled). */
export function* abandonDelivery(deliveryId: string, reason: string, now = Date.now()): Op<void> {
  yield* run(
    "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, queued_at = NULL, last_error = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
    reason,
    now,
    deliveryId,
  );
}

/** Starts a delivery again from the beginning of the retry schedule (attempts keep counting). */
export function* redeliver(tenantId: string, id: string, now = Date.now()): Op<DeliveryRow | undefined> {
  const changed = yield* run(
    "UPDATE webhook_deliveries SET status = 'pending', step = 0, next_attempt_at = ?, queued_at = NULL, last_error = NULL, updated_at = ? WHERE tenant_id = ? AND id = ?",
    now,
    now,
    tenantId,
    id,
  );
  return changed > 0 ? yield* getDelivery(tenantId, id) : undefined;
}
