import type { StoreHandle } from './db.js';

/**
 * Webhook deliveries and their attempt log. A delivery is `pending` until an attempt gets a 2xx
 * (`succeeded`) or the retry schedule is used up, the endpoint answers 410 or is disabled
 * (`failed`). Each attempt is recorded in one transaction with the delivery's next state.
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

const SELECT = `SELECT d.id, d.tenant_id AS tenantId, d.event_id AS eventId, d.batch_id AS batchId, d.endpoint_id AS endpointId, d.url,
  d.status, d.attempts, d.step, d.next_attempt_at AS nextAttemptAt, d.last_error AS lastError, d.created_at AS createdAt,
  d.updated_at AS updatedAt, e.type, e.payload
  FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id`;

export function getDeliveryById(store: StoreHandle, id: string): DeliveryRow | undefined {
  return store.sqlite.prepare(`${SELECT} WHERE d.id = ?`).get(id) as DeliveryRow | undefined;
}

export function getDelivery(store: StoreHandle, tenantId: string, id: string): DeliveryRow | undefined {
  return store.sqlite.prepare(`${SELECT} WHERE d.tenant_id = ? AND d.id = ?`).get(tenantId, id) as DeliveryRow | undefined;
}

/** Deliveries of a batch or of an endpoint, newest first, at most `limit`. */
export function listDeliveries(store: StoreHandle, tenantId: string, by: { batchId: string } | { endpointId: string }, limit: number): DeliveryRow[] {
  const [col, value] = 'batchId' in by ? ['d.batch_id', by.batchId] : ['d.endpoint_id', by.endpointId];
  return store.sqlite.prepare(`${SELECT} WHERE d.tenant_id = ? AND ${col} = ? ORDER BY d.created_at DESC, d.id DESC LIMIT ?`).all(tenantId, value, limit) as DeliveryRow[];
}

/** The tenant's latest deliveries (any batch or endpoint), newest first, optionally of one status. */
export function listRecentDeliveries(store: StoreHandle, tenantId: string, q: { status?: DeliveryRow['status']; limit: number; before?: string }): DeliveryRow[] {
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
  return store.sqlite.prepare(`${SELECT} WHERE ${where.join(' AND ')} ORDER BY d.id DESC LIMIT ?`).all(...args, q.limit) as DeliveryRow[];
}

export function attemptsOf(store: StoreHandle, deliveryIds: string[]): Map<string, AttemptLogRow[]> {
  const out = new Map<string, AttemptLogRow[]>();
  if (deliveryIds.length === 0) return out;
  const rows = store.sqlite
    .prepare(
      `SELECT delivery_id AS deliveryId, attempt, at, status_code AS statusCode, latency_ms AS latencyMs, response, error
         FROM webhook_attempts WHERE delivery_id IN (${deliveryIds.map(() => '?').join(',')}) ORDER BY attempt`,
    )
    .all(...deliveryIds) as AttemptLogRow[];
  for (const r of rows) out.set(r.deliveryId, [...(out.get(r.deliveryId) ?? []), r]);
  return out;
}

/**
 * Pending deliveries due now that are not on the queue (or were put there longer than `requeueMs`
 * ago without an attempt: Redis lost the job). Marks them queued; returns id and attempt number.
 */
export function takeDueDeliveries(store: StoreHandle, now: number, requeueMs: number, limit = 500): { id: string; attempt: number }[] {
  return store.sqlite.transaction(() => {
    const rows = store.sqlite
      .prepare(
        `SELECT id, attempts FROM webhook_deliveries
          WHERE status = 'pending' AND next_attempt_at <= ? AND (queued_at IS NULL OR queued_at < ?)
          ORDER BY next_attempt_at LIMIT ?`,
      )
      .all(now, now - requeueMs, limit) as { id: string; attempts: number }[];
    const mark = store.sqlite.prepare('UPDATE webhook_deliveries SET queued_at = ? WHERE id = ?');
    for (const r of rows) mark.run(now, r.id);
    return rows.map((r) => ({ id: r.id, attempt: r.attempts + 1 }));
  })();
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
export function recordAttempt(store: StoreHandle, deliveryId: string, attempt: number, o: AttemptOutcome): boolean {
  return store.sqlite.transaction(() => {
    const row = store.sqlite.prepare('SELECT tenant_id AS tenantId, status, attempts FROM webhook_deliveries WHERE id = ?').get(deliveryId) as
      | { tenantId: string; status: string; attempts: number }
      | undefined;
    if (!row || row.status !== 'pending' || row.attempts !== attempt - 1) return false;
    store.sqlite
      .prepare('INSERT INTO webhook_attempts (delivery_id, tenant_id, attempt, at, status_code, latency_ms, response, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(deliveryId, row.tenantId, attempt, o.at, o.statusCode, o.latencyMs, o.response, o.error);
    const status = o.next.kind === 'retry' ? 'pending' : o.next.kind;
    const nextAt = o.next.kind === 'retry' ? o.next.at : null;
    const lastError = o.next.kind === 'failed' ? o.next.reason : o.error ?? (o.statusCode !== null && (o.statusCode < 200 || o.statusCode > 299) ? `HTTP ${o.statusCode}` : null);
    store.sqlite
      .prepare(
        `UPDATE webhook_deliveries SET status = ?, attempts = ?, step = step + ?, next_attempt_at = ?, queued_at = NULL, last_error = ?, updated_at = ? WHERE id = ?`,
      )
      .run(status, attempt, o.next.kind === 'succeeded' ? 0 : 1, nextAt, lastError, o.at, deliveryId);
    return true;
  })();
}

/** Ends a pending delivery without an attempt (its endpoint is disabled). */
export function abandonDelivery(store: StoreHandle, deliveryId: string, reason: string, now = Date.now()): void {
  store.sqlite
    .prepare("UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, queued_at = NULL, last_error = ?, updated_at = ? WHERE id = ? AND status = 'pending'")
    .run(reason, now, deliveryId);
}

/** Starts a delivery again from the beginning of the retry schedule (attempts keep counting). */
export function redeliver(store: StoreHandle, tenantId: string, id: string, now = Date.now()): DeliveryRow | undefined {
  const changed = store.sqlite
    .prepare("UPDATE webhook_deliveries SET status = 'pending', step = 0, next_attempt_at = ?, queued_at = NULL, last_error = NULL, updated_at = ? WHERE tenant_id = ? AND id = ?")
    .run(now, now, tenantId, id).changes;
  return changed > 0 ? getDelivery(store, tenantId, id) : undefined;
}
