import { prefixedId } from './ids.js';
import { all, run, type Op } from './op.js';

/**
 * The audit log of mutating API calls (docs/operations.md, "Running a multi-tenant
 * installation"). One row per call, written after the call was answered, in its own
 * transaction: who (key id and the scope the call needed), what (route and path), when, from
 * where, and the status answered. Never a body, never a key or a secret.
 */

export interface AuditEventRow {
  id: string;
  tenantId: string | null;
  keyId: string | null;
  scope: string;
  action: string;
  target: string;
  status: number;
  sourceAddress: string | null;
  requestId: string | null;
  at: number;
}

export type NewAuditEvent = Omit<AuditEventRow, 'id'>;

const AUDIT_COLUMNS = `id, tenant_id AS "tenantId", key_id AS "keyId", scope, action, target, status, source_address AS "sourceAddress", request_id AS "requestId", at`;

export function* recordAuditEvent(e: NewAuditEvent): Op<void> {
  yield* run(
    'INSERT INTO audit_events (id, tenant_id, key_id, scope, action, target, status, source_address, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    prefixedId('ae', e.at),
    e.tenantId,
    e.keyId,
    e.scope,
    e.action,
    e.target,
    e.status,
    e.sourceAddress,
    e.requestId,
    e.at,
  );
}

/**
 * Events newest first: of one tenant, or of every tenant (`tenantId` undefined: the server
 * admin's view). One page and whether more follow.
 */
export function* listAuditEvents(q: { tenantId?: string; limit: number; before?: string }): Op<{ rows: AuditEventRow[]; more: boolean }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.tenantId !== undefined) {
    where.push('tenant_id = ?');
    params.push(q.tenantId);
  }
  if (q.before) {
    where.push('id < ?');
    params.push(q.before);
  }
  const rows = yield* all<AuditEventRow>(
    `SELECT ${AUDIT_COLUMNS} FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
    ...params,
    q.limit + 1,
  );
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
}

/** Deletes events older than `before` (epoch ms); how many went. */
export function* pruneAuditEvents(before: number): Op<number> {
  return yield* run('DELETE FROM audit_events WHERE at < ?', before);
}
