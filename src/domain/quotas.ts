/**
 * A tenant's quotas: what the admin API sets per tenant (`tenants.quotas`, JSON overrides) over
 * the server-wide defaults (FANOUT_QUOTA_* settings). A quota that is null is unlimited.
 *
 * - batchesPerMinute, itemsPerMinute: submission rate; over it a submission is answered 429
 * - storedItems, storedResultBytes: storage; over it a submission is answered 403
 * - runningItems: the most items of the tenant running at once across all workers; over it a
 *   batch is admitted but waits, with the condition QuotaExceeded
 */
export const QUOTA_NAMES = ['batchesPerMinute', 'itemsPerMinute', 'storedItems', 'storedResultBytes', 'runningItems'] as const;

export type QuotaName = (typeof QUOTA_NAMES)[number];

/** Every quota resolved: a number, or null for unlimited. */
export type Quotas = Record<QuotaName, number | null>;

/** What a tenant sets: a number, null (explicitly unlimited), or absent (the server default). */
export type QuotaOverrides = Partial<Record<QuotaName, number | null>>;

export const UNLIMITED_QUOTAS: Quotas = Object.freeze({
  batchesPerMinute: null,
  itemsPerMinute: null,
  storedItems: null,
  storedResultBytes: null,
  runningItems: null,
});

/** The tenant's overrides over the server's defaults. */
export function effectiveQuotas(defaults: Quotas, overrides: QuotaOverrides): Quotas {
  const out = { ...defaults };
  for (const name of QUOTA_NAMES) {
    if (overrides[name] !== undefined) out[name] = overrides[name]!;
  }
  return out;
}

export function isQuotaName(name: string): name is QuotaName {
  return (QUOTA_NAMES as readonly string[]).includes(name);
}

/**
 * Reads stored overrides (the `tenants.quotas` column), keeping only known names with a
 * non-negative integer or null, so a row written by a newer version never breaks an older one.
 */
export function parseQuotaOverrides(json: string): QuotaOverrides {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return {};
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
  const out: QuotaOverrides = {};
  for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (!isQuotaName(name)) continue;
    if (v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) out[name] = v as number | null;
  }
  return out;
}
