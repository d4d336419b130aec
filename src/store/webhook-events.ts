import { batchEventOf, batchLinks, eventBody, itemFailedData, wantsEvent, type EventType } from '../domain/webhooks.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import { all, get, run, value, type Op } from './op.js';
import { prefixedId } from './ids.js';

/**
 * Writing webhook events. Called inside the operation of the change an event reports (the
 * final transition in refreshStatus, an item failing in reports and the Kubernetes sync), so the
 * event and one pending delivery per target commit with the change or not at all: a crash
 * afterwards loses nothing, the dispatcher's poller finds the deliveries on restart.
 * The webhook outbox and its deliverer: docs/architecture.md#webhooks.
 */

/** Sortable ids (src/store/ids.ts): events of one operation keep the order they were written in. */
export const newId = (prefix: string) => prefixedId(prefix);

interface Target {
  endpointId: string | null;
  url: string;
}

/** The batch's own webhook and every enabled endpoint of its tenant that want `type`. */
function* targetsFor(tenantId: string, header: BatchHeader, type: EventType): Op<Target[]> {
  const out: Target[] = [];
  if (header.webhook && wantsEvent(header.webhook.events, type)) out.push({ endpointId: null, url: header.webhook.url });
  const endpoints = yield* all<{ id: string; url: string; events: string }>('SELECT id, url, events FROM webhook_endpoints WHERE tenant_id = ? AND enabled = 1', tenantId);
  for (const e of endpoints) if (wantsEvent(JSON.parse(e.events) as string[], type)) out.push({ endpointId: e.id, url: e.url });
  return out;
}

function* writeEvent(tenantId: string, batchId: string, type: EventType, payload: string, targets: Target[], now: number): Op<void> {
  const eventId = newId('evt');
  yield* run('INSERT INTO webhook_events (id, tenant_id, batch_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)', eventId, tenantId, batchId, type, payload, now);
  for (const t of targets) {
    yield* run(
      `INSERT INTO webhook_deliveries (id, tenant_id, event_id, batch_id, endpoint_id, url, status, next_attempt_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
      newId('whd'),
      tenantId,
      eventId,
      batchId,
      t.endpointId,
      t.url,
      now,
      now,
      now,
    );
  }
}

export interface FinalBatchFacts {
  id: string;
  tenantId: string;
  spec: string;
  phase: string;
  counts: { total: number; pending: number; running: number; succeeded: number; failed: number; cancelled: number };
  completedIndexes: string;
  failedIndexes: string;
  startTime: string | null;
  completionTime: string | null;
}

/** Records the batch.* event of a batch that just reached a final phase (no row when nobody listens). */
export function* recordBatchFinished(b: FinalBatchFacts, now: number): Op<void> {
  const type = batchEventOf(b.phase);
  if (!type) return;
  const targets = yield* targetsFor(b.tenantId, JSON.parse(b.spec) as BatchHeader, type);
  if (targets.length === 0) return;
  const timestamp = new Date(now).toISOString();
  const payload = eventBody(type, timestamp, {
    batchId: b.id,
    phase: b.phase,
    counts: b.counts,
    completedIndexes: b.completedIndexes,
    failedIndexes: b.failedIndexes,
    startTime: b.startTime,
    completionTime: b.completionTime,
    links: batchLinks(b.id),
  });
  yield* writeEvent(b.tenantId, b.id, type, payload, targets, now);
}

/**
 * item.failed events for one batch within one operation. Targets are looked up once, on the
 * first failed item, and nothing more is done when none opted in: the common case costs one query
 * per operation that fails items.
 */
export class ItemFailedEvents {
  private targets: Target[] | null = null;
  private tenantId = '';

  constructor(private readonly batchId: string) {}

  /** Whether any target wants item.failed for this batch (looked up once). */
  *wanted(): Op<boolean> {
    if (this.targets === null) {
      const row = yield* get<{ tenantId: string; spec: string }>('SELECT tenant_id AS "tenantId", spec FROM batches WHERE id = ?', this.batchId);
      this.tenantId = row?.tenantId ?? '';
      this.targets = row ? yield* targetsFor(row.tenantId, JSON.parse(row.spec) as BatchHeader, 'item.failed') : [];
    }
    return this.targets.length > 0;
  }

  *record(index: number, reason: string | null, error: string | null, now: number): Op<void> {
    if (!(yield* this.wanted())) return;
    const customId = yield* value<string | null>('SELECT custom_id FROM items WHERE batch_id = ? AND idx = ?', this.batchId, index);
    const payload = eventBody('item.failed', new Date(now).toISOString(), itemFailedData(this.batchId, index, customId ?? null, reason, error));
    yield* writeEvent(this.tenantId, this.batchId, 'item.failed', payload, this.targets!, now);
  }
}
