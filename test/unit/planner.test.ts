import { describe, expect, it } from 'vitest';
import { deadlineAt, planRelease } from '../../src/domain/release-planning.js';

describe('planRelease', () => {
  const base = { window: 20_000, maxLeaseSize: 256 };
  it.each([
    { name: 'parallelism 3, nothing out: three single-item leases', in: { parallelism: 3, running: 0, pending: 9 }, count: 3, leaseSize: 1 },
    { name: 'parallelism reached: nothing', in: { parallelism: 3, running: 3, pending: 6 }, count: 0, leaseSize: 1 },
    { name: 'one slot freed: one item', in: { parallelism: 3, running: 2, pending: 6 }, count: 1, leaseSize: 1 },
    { name: 'fewer pending than room', in: { parallelism: 100, running: 0, pending: 5 }, count: 5, leaseSize: 1 },
    { name: 'default parallelism spreads over ~16 leases', in: { parallelism: 100, running: 0, pending: 1000 }, count: 100, leaseSize: 7 },
    { name: 'huge parallelism is capped by the window', in: { parallelism: 1_000_000, running: 0, pending: 1_000_000 }, count: 20_000, leaseSize: 256 },
    { name: 'more running than parallelism (lowered): nothing, never negative', in: { parallelism: 2, running: 5, pending: 10 }, count: 0, leaseSize: 1 },
    { name: 'nothing pending', in: { parallelism: 10, running: 0, pending: 0 }, count: 0, leaseSize: 1 },
    { name: 'a full window with a few slots free waits for a sixteenth of it', in: { parallelism: 1_000_000, running: 19_990, pending: 500_000 }, count: 0, leaseSize: 1 },
    { name: 'a sixteenth of the window free: released', in: { parallelism: 1_000_000, running: 18_750, pending: 500_000 }, count: 1_250, leaseSize: 79 },
    { name: 'the tail fits in the few free slots: released', in: { parallelism: 1_000_000, running: 19_990, pending: 4 }, count: 4, leaseSize: 1 },
    { name: 'parallelism 100 waits for 7 free', in: { parallelism: 100, running: 95, pending: 50 }, count: 0, leaseSize: 1 },
  ])('$name', (c) => {
    expect(planRelease({ ...base, ...c.in })).toEqual({ count: c.count, leaseSize: c.leaseSize });
  });

  it('respects a smaller maxLeaseSize', () => {
    expect(planRelease({ parallelism: 10_000, running: 0, pending: 10_000, window: 20_000, maxLeaseSize: 50 }).leaseSize).toBe(50);
  });
});

describe('deadlineAt', () => {
  it.each([
    { name: 'no deadline set', start: '2026-01-01T00:00:00.000Z', secs: undefined, want: null },
    { name: 'not started', start: null, secs: 10, want: null },
    { name: 'start + seconds', start: '2026-01-01T00:00:00.000Z', secs: 10, want: Date.parse('2026-01-01T00:00:10.000Z') },
  ])('$name', (c) => {
    expect(deadlineAt(c.start, c.secs)).toBe(c.want);
  });
});
