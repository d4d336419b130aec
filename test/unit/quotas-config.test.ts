import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { deriveStatus } from '../../src/domain/batch-status.js';

describe('FANOUT_QUOTA_* settings', () => {
  it('leave every quota unlimited when unset or empty', () => {
    expect(loadConfig({}, { FANOUT_QUOTA_STORED_ITEMS: '' }).quotas).toEqual({ batchesPerMinute: null, itemsPerMinute: null, storedItems: null, storedResultBytes: null, runningItems: null });
  });

  it('set the server-wide defaults', () => {
    const env = { FANOUT_QUOTA_BATCHES_PER_MINUTE: '60', FANOUT_QUOTA_ITEMS_PER_MINUTE: '100000', FANOUT_QUOTA_STORED_ITEMS: '0', FANOUT_QUOTA_STORED_RESULT_BYTES: '1073741824', FANOUT_QUOTA_RUNNING_ITEMS: '8' };
    expect(loadConfig({}, env).quotas).toEqual({ batchesPerMinute: 60, itemsPerMinute: 100000, storedItems: 0, storedResultBytes: 1073741824, runningItems: 8 });
  });

  it.each(['-1', '1.5', 'ten'])('refuse %s with the setting named', (bad) => {
    expect(() => loadConfig({}, { FANOUT_QUOTA_RUNNING_ITEMS: bad })).toThrow(ConfigError);
    expect(() => loadConfig({}, { FANOUT_QUOTA_RUNNING_ITEMS: bad })).toThrow(/FANOUT_QUOTA_RUNNING_ITEMS/);
  });
});

describe('the QuotaExceeded condition', () => {
  const counts = { total: 4, pending: 2, running: 2, succeeded: 0, failed: 0, cancelled: 0 };
  const previous = { phase: 'Running' as const, conditions: [], startTime: '2026-12-03T00:00:00.000Z', completionTime: null };
  const hold = { quota: 'runningItems', message: 'held' };

  it('holds while items of a held batch wait, and turns False once none is held back', () => {
    const held = deriveStatus({ decisions: { halt: null, suspended: false, quotaHold: hold }, counts, previous, now: '2026-12-03T00:00:01.000Z' });
    expect(held.phase).toBe('Running');
    expect(held.conditions).toEqual([{ type: 'QuotaExceeded', status: 'True', reason: 'QuotaExceeded', message: 'held', lastTransitionTime: '2026-12-03T00:00:01.000Z' }]);
    const freed = deriveStatus({ decisions: { halt: null, suspended: false, quotaHold: null }, counts, previous: held, now: '2026-12-03T00:00:02.000Z' });
    expect(freed.conditions).toEqual([{ type: 'QuotaExceeded', status: 'False', reason: 'QuotaAvailable', message: 'no item of the batch waits for a quota', lastTransitionTime: '2026-12-03T00:00:02.000Z' }]);
  });

  it('is not shown once nothing is pending, even if the hold was not yet cleared', () => {
    const done = deriveStatus({ decisions: { halt: null, suspended: false, quotaHold: hold }, counts: { ...counts, pending: 0, running: 0, succeeded: 4 }, previous, now: '2026-12-03T00:00:01.000Z' });
    expect(done.phase).toBe('Succeeded');
    expect(done.conditions.map((c) => c.type)).toEqual(['Complete']);
  });
});
