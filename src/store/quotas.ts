import { effectiveQuotas, parseQuotaOverrides, type QuotaName, type Quotas } from '../domain/quotas.js';
import { all, get, run, value, type Op } from './op.js';

/**
 * Quotas in the store: a tenant's resolved quotas, the admission of submissions against them
 * (rate and storage, checked and counted in the transaction that stores the submission, so a
 * refused one changes nothing and every API replica counts alike), and the usage counters kept
 * per tenant per UTC day. The running-items quota is the dispatcher's (`releaseLeases`).
 * What each quota means and answers: docs/api.md#quotas-and-usage.
 */

/** Length of a submission-rate window: fixed windows starting on the minute. */
export const RATE_WINDOW_MS = 60_000;

/** A submission over one of the tenant's quotas: 429 for a rate (it passes), 403 for storage. */
export class QuotaExceededError extends Error {
  constructor(
    readonly quota: QuotaName,
    readonly limit: number,
    readonly used: number,
    readonly requested: number,
    /** rate quotas: seconds until the current window ends; null when waiting cannot help */
    readonly retryAfterSeconds: number | null,
    readonly quotas: Quotas,
  ) {
    super(`${quota} quota exceeded: ${used} used of ${limit}, this request needs ${requested}`);
    this.name = 'QuotaExceededError';
  }
}

/** The tenant's quotas: its stored overrides (`tenants.quotas`) over the server-wide defaults. */
export function* tenantQuotas(tenantId: string, defaults: Quotas): Op<Quotas> {
  const stored = yield* value<string>('SELECT quotas FROM tenants WHERE id = ?', tenantId);
  return effectiveQuotas(defaults, stored === undefined ? {} : parseQuotaOverrides(stored));
}

export function rateWindowStart(now: number): number {
  return now - (now % RATE_WINDOW_MS);
}

/** The UTC day a moment falls on, as usage rows are keyed. */
export function usageDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

/** What a submission adds: batches and items to the rate windows, items to storage. */
export interface Submission {
  batches: number;
  /** items this submission will run (the rate quotas) */
  items: number;
  /** items it adds to storage (a retry runs stored items again: 0) */
  storedItems: number;
}

/** Current use of every quota of a tenant (GET /v1/usage), read without writing. */
export function* quotaUse(tenantId: string, now: number): Op<Record<QuotaName, number>> {
  const window = yield* get<{ batches: number; items: number }>('SELECT batches, items FROM tenant_rate_windows WHERE tenant_id = ? AND window_start = ?', tenantId, rateWindowStart(now));
  const stored = (yield* get<{ items: number | null; bytes: number | null; running: number | null }>(
    `SELECT sum(total) AS items, sum(result_bytes) AS bytes, sum(CASE WHEN state = 'active' THEN running ELSE 0 END) AS running FROM batches WHERE tenant_id = ?`,
    tenantId,
  ))!;
  return {
    batchesPerMinute: Number(window?.batches ?? 0),
    itemsPerMinute: Number(window?.items ?? 0),
    storedItems: Number(stored.items ?? 0),
    storedResultBytes: Number(stored.bytes ?? 0),
    runningItems: Number(stored.running ?? 0),
  };
}

/**
 * The quota a submission would go over, or null. Reads only: a schedule asks first and records
 * a skip instead of throwing. Rate quotas are checked first (they pass), then storage.
 */
export function* submissionRefusal(tenantId: string, quotas: Quotas, s: Submission, now: number): Op<QuotaExceededError | null> {
  const limited = quotas.batchesPerMinute !== null || quotas.itemsPerMinute !== null || quotas.storedItems !== null || quotas.storedResultBytes !== null;
  if (!limited) return null;
  const use = yield* quotaUse(tenantId, now);
  const retryAfter = Math.max(1, Math.ceil((rateWindowStart(now) + RATE_WINDOW_MS - now) / 1000));
  const rate: [QuotaName, number][] = [
    ['batchesPerMinute', s.batches],
    ['itemsPerMinute', s.items],
  ];
  for (const [name, requested] of rate) {
    const limit = quotas[name];
    if (limit === null || requested === 0 || use[name] + requested <= limit) continue;
    // More than a whole window allows can never pass: waiting does not help.
    return new QuotaExceededError(name, limit, use[name], requested, requested > limit ? null : retryAfter, quotas);
  }
  if (quotas.storedItems !== null && use.storedItems + s.storedItems > quotas.storedItems) {
    return new QuotaExceededError('storedItems', quotas.storedItems, use.storedItems, s.storedItems, null, quotas);
  }
  if (quotas.storedResultBytes !== null && s.items > 0 && use.storedResultBytes >= quotas.storedResultBytes) {
    return new QuotaExceededError('storedResultBytes', quotas.storedResultBytes, use.storedResultBytes, 0, null, quotas);
  }
  return null;
}

/** The quota a submission would go over now, or null, with the tenant's quotas resolved (reads only). */
export function* checkSubmission(tenantId: string, quotaDefaults: Quotas, s: Submission, now: number): Op<QuotaExceededError | null> {
  return yield* submissionRefusal(tenantId, yield* tenantQuotas(tenantId, quotaDefaults), s, now);
}

/**
 * Admits a submission inside the transaction that stores it (`quotaDefaults`: the server-wide
 * ones; the tenant's own overrides are read here): counts it in the tenant's usage
 * day and rate window, then checks the quotas, throwing QuotaExceededError (which rolls the whole
 * transaction back) when it goes over one. The day row is written first: on PostgreSQL its row
 * lock makes a tenant's concurrent submissions wait for each other, so the sums read next
 * include every submission committed before (READ COMMITTED reads afresh per statement).
 */
export function* admitSubmission(tenantId: string, quotaDefaults: Quotas, s: Submission, now: number): Op<void> {
  yield* addUsage(tenantId, now, { batches: s.batches, itemsSubmitted: s.storedItems });
  const refusal = yield* submissionRefusal(tenantId, yield* tenantQuotas(tenantId, quotaDefaults), s, now);
  if (refusal) throw refusal;
  const start = rateWindowStart(now);
  const counted = yield* all<{ batches: number }>(
    `INSERT INTO tenant_rate_windows (tenant_id, window_start, batches, items) VALUES (?, ?, ?, ?)
     ON CONFLICT (tenant_id, window_start) DO UPDATE SET batches = tenant_rate_windows.batches + excluded.batches, items = tenant_rate_windows.items + excluded.items
     RETURNING batches`,
    tenantId,
    start,
    s.batches,
    s.items,
  );
  // The window's first submission: the windows before it are no longer read.
  if (Number(counted[0]?.batches) === s.batches) yield* run('DELETE FROM tenant_rate_windows WHERE tenant_id = ? AND window_start < ?', tenantId, start);
}

export interface UsageDelta {
  batches?: number;
  itemsSubmitted?: number;
  itemsRun?: number;
  itemMs?: number;
  resultBytes?: number;
}

/** Adds to the tenant's usage of the day `now` falls on (in the transaction that did the work). */
export function* addUsage(tenantId: string, now: number, d: UsageDelta): Op<void> {
  yield* run(
    `INSERT INTO tenant_usage_days (tenant_id, day, batches, items_submitted, items_run, item_ms, result_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (tenant_id, day) DO UPDATE SET batches = tenant_usage_days.batches + excluded.batches,
       items_submitted = tenant_usage_days.items_submitted + excluded.items_submitted, items_run = tenant_usage_days.items_run + excluded.items_run,
       item_ms = tenant_usage_days.item_ms + excluded.item_ms, result_bytes = tenant_usage_days.result_bytes + excluded.result_bytes`,
    tenantId,
    usageDay(now),
    d.batches ?? 0,
    d.itemsSubmitted ?? 0,
    d.itemsRun ?? 0,
    Math.round(d.itemMs ?? 0),
    d.resultBytes ?? 0,
  );
}

export interface UsageDay {
  day: string;
  batches: number;
  itemsSubmitted: number;
  itemsRun: number;
  itemSeconds: number;
  resultBytes: number;
}

/** The tenant's usage per UTC day from `fromDay` to `toDay` (inclusive, YYYY-MM-DD), oldest first. */
export function* usageByDay(tenantId: string, fromDay: string, toDay: string): Op<UsageDay[]> {
  const rows = yield* all<{ day: string; batches: number; itemsSubmitted: number; itemsRun: number; itemMs: number; resultBytes: number }>(
    `SELECT day, batches, items_submitted AS "itemsSubmitted", items_run AS "itemsRun", item_ms AS "itemMs", result_bytes AS "resultBytes"
       FROM tenant_usage_days WHERE tenant_id = ? AND day >= ? AND day <= ? ORDER BY day`,
    tenantId,
    fromDay,
    toDay,
  );
  return rows.map((r) => ({
    day: r.day,
    batches: Number(r.batches),
    itemsSubmitted: Number(r.itemsSubmitted),
    itemsRun: Number(r.itemsRun),
    itemSeconds: Number(r.itemMs) / 1000,
    resultBytes: Number(r.resultBytes),
  }));
}

/** One tenant's activity today, as /metrics labels it (`tenant`: its id, or `other`). */
export interface TenantActivity {
  tenant: string;
  batches: number;
  itemsRun: number;
  itemSeconds: number;
  resultBytes: number;
  runningItems: number;
}

/**
 * Today's activity of the `top` most active tenants (by items run, then batches) and of all the
 * others summed as `other`, for /metrics: at most top + 1 label values, however many tenants.
 */
export function* tenantActivityToday(now: number, top: number): Op<TenantActivity[]> {
  type Row = { tenantId: string; batches: number; itemsRun: number; itemMs: number; resultBytes: number };
  const rows = yield* all<Row>(
    `SELECT tenant_id AS "tenantId", batches, items_run AS "itemsRun", item_ms AS "itemMs", result_bytes AS "resultBytes"
       FROM tenant_usage_days WHERE day = ? ORDER BY items_run DESC, batches DESC, tenant_id`,
    usageDay(now),
  );
  const running = new Map(
    (yield* all<{ tenantId: string; n: number }>(`SELECT tenant_id AS "tenantId", sum(running) AS n FROM batches WHERE state = 'active' GROUP BY tenant_id`)).map((r) => [r.tenantId, Number(r.n)]),
  );
  const out: TenantActivity[] = [];
  const other: TenantActivity = { tenant: 'other', batches: 0, itemsRun: 0, itemSeconds: 0, resultBytes: 0, runningItems: 0 };
  const listed = new Set<string>();
  for (const r of rows) {
    const a = { tenant: r.tenantId, batches: Number(r.batches), itemsRun: Number(r.itemsRun), itemSeconds: Number(r.itemMs) / 1000, resultBytes: Number(r.resultBytes), runningItems: running.get(r.tenantId) ?? 0 };
    if (out.length < top) {
      out.push(a);
      listed.add(r.tenantId);
      continue;
    }
    other.batches += a.batches;
    other.itemsRun += a.itemsRun;
    other.itemSeconds += a.itemSeconds;
    other.resultBytes += a.resultBytes;
  }
  // running items of tenants not listed (none today, or beyond the top) go to `other`
  for (const [tenantId, n] of running) if (!listed.has(tenantId)) other.runningItems += n;
  out.push(other);
  return out;
}
