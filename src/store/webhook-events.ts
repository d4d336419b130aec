import { randomBytes } from 'node:crypto';
import type { StoreHandle } from './db.js';
import { batchEventOf, batchLinks, eventBody, itemFailedData, wantsEvent, type EventType } from '../domain/webhooks.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import { indexSets } from './item-queries.js';

/**
 * Writing webhook events. Called inside the transaction of the change an event reports (the
 * final transition in refreshStatus, an item failing in reports and the Kubernetes sync), so the
 * event and one pending delivery per target commit with the change or not at all: a crash
 * afterwards loses nothing, the dispatcher's poller finds the deliveries on restart.
 * The webhook outbox and its deliverer: docs/architecture.md#webhooks.
 */

export const newId = (prefix: string) => `${prefix}_${Date.now().toString(36)}${randomBytes(8).toString('hex')}`;

interface Target {
  endpointId: string | null;
  url: string;
}

/** The batch's own webhook and every enabled endpoint of its tenant that want `type`. */
function targetsFor(store: StoreHandle, tenantId: string, header: BatchHeader, type: EventType): Target[] {
  const out: Target[] = [];
  if (header.webhook && wantsEvent(header.webhook.events, type)) out.push({ endpointId: null, url: header.webhook.url });
  const endpoints = store.sqlite
    .prepare('SELECT id, url, events FROM webhook_endpoints WHERE tenant_id = ? AND enabled = 1')
    .all(tenantId) as { id: string; url: string; events: string }[];
  for (const e of endpoints) if (wantsEvent(JSON.parse(e.events) as string[], type)) out.push({ endpointId: e.id, url: e.url });
  return out;
}

function writeEvent(store: StoreHandle, tenantId: string, batchId: string, type: EventType, payload: string, targets: Target[], now: number): void {
  const eventId = newId('evt');
  store.sqlite
    .prepare('INSERT INTO webhook_events (id, tenant_id, batch_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(eventId, tenantId, batchId, type, payload, now);
  const insert = store.sqlite.prepare(
    `INSERT INTO webhook_deliveries (id, tenant_id, event_id, batch_id, endpoint_id, url, status, next_attempt_at, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
  );
  for (const t of targets) insert.run(newId('whd'), tenantId, eventId, batchId, t.endpointId, t.url, now, now, now);
}

export interface FinalBatchFacts {
  id: string;
  tenantId: string;
  spec: string;
  phase: string;
  counts: { total: number; pending: number; running: number; succeeded: number; failed: number; cancelled: number };
  startTime: string | null;
  completionTime: string | null;
}

/** Records the batch.* event of a batch that just reached a final phase (no row when nobody listens). */
export function recordBatchFinished(store: StoreHandle, b: FinalBatchFacts, now: number): void {
  const type = batchEventOf(b.phase);
  if (!type) return;
  const targets = targetsFor(store, b.tenantId, JSON.parse(b.spec) as BatchHeader, type);
  if (targets.length === 0) return;
  const sets = indexSets(store, b.id);
  const timestamp = new Date(now).toISOString();
  const payload = eventBody(type, timestamp, {
    batchId: b.id,
    phase: b.phase,
    counts: b.counts,
    completedIndexes: sets.completedIndexes,
    failedIndexes: sets.failedIndexes,
    startTime: b.startTime,
    completionTime: b.completionTime,
    links: batchLinks(b.id),
  });
  writeEvent(store, b.tenantId, b.id, type, payload, targets, now);
}

/**
 * item.failed events for one batch within one transaction. Targets are looked up once, on the
 * first failed item, and nothing more is done when none opted in: the common case costs one query
 * per transaction that fails items.
 */
export class ItemFailedEvents {
  private targets: Target[] | null = null;
  private tenantId = '';

  constructor(
    private readonly store: StoreHandle,
    private readonly batchId: string,
  ) {}

  /** Whether any target wants item.failed for this batch (looked up once). */
  wanted(): boolean {
    if (this.targets === null) {
      const row = this.store.sqlite.prepare('SELECT tenant_id AS tenantId, spec FROM batches WHERE id = ?').get(this.batchId) as { tenantId: string; spec: string } | undefined;
      this.tenantId = row?.tenantId ?? '';
      this.targets = row ? targetsFor(this.store, row.tenantId, JSON.parse(row.spec) as BatchHeader, 'item.failed') : [];
    }
    return this.targets.length > 0;
  }

  record(index: number, reason: string | null, error: string | null, now: number): void {
    if (!this.wanted()) return;
    const customId = this.store.sqlite.prepare('SELECT custom_id FROM items WHERE batch_id = ? AND idx = ?').pluck().get(this.batchId, index) as string | null;
    const payload = eventBody('item.failed', new Date(now).toISOString(), itemFailedData(this.batchId, index, customId ?? null, reason, error));
    writeEvent(this.store, this.tenantId, this.batchId, 'item.failed', payload, this.targets!, now);
  }
}
