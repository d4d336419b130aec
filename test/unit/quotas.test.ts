import { describe, expect, it } from 'vitest';
import { effectiveQuotas, parseQuotaOverrides, UNLIMITED_QUOTAS } from '../../src/domain/quotas.js';

describe('quotas', () => {
  it.each([
    ['{}', {}],
    ['{"runningItems": 10}', { runningItems: 10 }],
    ['{"runningItems": null}', { runningItems: null }],
    ['{"runningItems": -1, "storedItems": 1.5, "unknown": 3}', {}],
    ['not json', {}],
    ['[1]', {}],
  ])('parseQuotaOverrides(%s)', (json, expected) => {
    expect(parseQuotaOverrides(json)).toEqual(expected);
  });

  it('overrides win over defaults; null is unlimited; absent keeps the default', () => {
    const defaults = { ...UNLIMITED_QUOTAS, itemsPerMinute: 1000, runningItems: 50 };
    expect(effectiveQuotas(defaults, { runningItems: null, storedItems: 7 })).toEqual({
      ...UNLIMITED_QUOTAS,
      itemsPerMinute: 1000,
      runningItems: null,
      storedItems: 7,
    });
  });
});
