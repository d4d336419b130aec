import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startAuditPruning } from '../../src/dispatch/audit-retention.js';
import { listAuditEvents, pruneAuditEvents, recordAuditEvent } from '../../src/store/audit-events.js';
import type { Store } from '../../src/store/store.js';
import { newDatabaseUrl, openTestStore } from '../helpers/test-store.js';
import { waitUntil } from './support.js';

/** Audit retention on the run's real store (SQLite, or PostgreSQL in the postgres suite). */
describe('audit retention', () => {
  let store: Store | undefined;
  let stop = () => {};
  afterEach(async () => {
    stop();
    await store?.close();
  });

  const DAY = 86_400_000;
  const event = (tenantId: string, at: number) => ({ tenantId, keyId: 'k_1', scope: 'write', action: 'POST /v1/batches', target: '/v1/batches', status: 202, sourceAddress: '127.0.0.1', requestId: 'r', at });

  async function withEvents(now: number) {
    store = await openTestStore(await newDatabaseUrl(fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-audit-'))));
    for (const [tenant, age] of [['t_a', 100 * DAY], ['t_a', 91 * DAY], ['t_a', 89 * DAY], ['t_b', 1 * DAY], ['t_b', 0]] as const) {
      await store.write(recordAuditEvent(event(tenant, now - age)));
    }
    return store;
  }

  it('pruning deletes exactly the events older than the cut, of every tenant', async () => {
    const now = Date.now();
    const s = await withEvents(now);
    expect(await s.write(pruneAuditEvents(now - 90 * DAY))).toBe(2);
    const left = await s.read(listAuditEvents({ limit: 100 }));
    expect(left.rows.map((r) => now - r.at).sort((a, b) => a - b)).toEqual([0, 1 * DAY, 89 * DAY]);
    expect((await s.read(listAuditEvents({ tenantId: 't_a', limit: 100 }))).rows).toHaveLength(1);
    expect(await s.write(pruneAuditEvents(now - 90 * DAY))).toBe(0);
  });

  it('the periodic pruning (what the leading dispatcher starts) prunes past the retention at once', async () => {
    const now = Date.now();
    const s = await withEvents(now);
    stop = startAuditPruning({ store: s, retentionMs: 30 * DAY, logger: pino({ level: 'silent' }) });
    await waitUntil(async () => (await s.read(listAuditEvents({ limit: 100 }))).rows.length === 2, 'events older than 30 days pruned', 10_000);
    expect((await s.read(listAuditEvents({ tenantId: 't_b', limit: 100 }))).rows).toHaveLength(2);
  });
});
