import { describe, expect, it } from 'vitest';
import { agedPriority, allocateShares, leasePriority, waterFill, LEASE_PRIORITY_SPAN, type ShareCandidate } from '../../src/domain/fair-share.js';

const NOW = 1_000_000;
const AGING_MS = 10_000;

function batch(batchId: string, tenantId: string, extra: Partial<ShareCandidate> = {}): ShareCandidate {
  return { batchId, tenantId, weight: 1, priority: 0, createdAt: NOW, parallelism: 1_000_000, running: 0, pending: 1_000_000, ...extra };
}

describe('waterFill', () => {
  it('splits by weight when every claimant wants more than its share', () => {
    const got = waterFill(400, [
      { key: 'a', weight: 3, demand: 1000 },
      { key: 'b', weight: 1, demand: 1000 },
    ]);
    expect(got.get('a')).toBe(300);
    expect(got.get('b')).toBe(100);
  });

  it('gives a small claimant what it needs and the rest to the others', () => {
    const got = waterFill(1000, [
      { key: 'big', weight: 1, demand: 1_000_000 },
      { key: 'small', weight: 1, demand: 20 },
    ]);
    expect(got.get('small')).toBe(20);
    expect(got.get('big')).toBe(980);
  });

  it('gives each claimant with work at least one item', () => {
    const got = waterFill(2, [
      { key: 'a', weight: 100, demand: 50 },
      { key: 'b', weight: 1, demand: 50 },
    ]);
    expect(got.get('b')).toBe(1);
  });
});

describe('agedPriority', () => {
  it('climbs one point per aging period up to the ceiling', () => {
    expect(agedPriority(0, NOW, 5, NOW, AGING_MS)).toBe(0);
    expect(agedPriority(0, NOW - 3 * AGING_MS, 5, NOW, AGING_MS)).toBe(3);
    expect(agedPriority(0, NOW - 50 * AGING_MS, 5, NOW, AGING_MS)).toBe(5);
  });

  it('leaves batches at the ceiling as they are, whatever their age', () => {
    expect(agedPriority(5, NOW - 50 * AGING_MS, 5, NOW, AGING_MS)).toBe(5);
  });
});

describe('allocateShares', () => {
  it('gives a lone tenant the whole budget', () => {
    const shares = allocateShares([batch('a1', 'A')], 20_000, NOW, AGING_MS);
    expect(shares.get('a1')!.limit).toBe(20_000);
  });

  it('splits the budget 3:1 between busy tenants of weights 3 and 1', () => {
    const shares = allocateShares([batch('a1', 'A', { weight: 3 }), batch('b1', 'B', { weight: 1 })], 400, NOW, AGING_MS);
    expect(shares.get('a1')!.limit).toBe(300);
    expect(shares.get('b1')!.limit).toBe(100);
  });

  it('splits by tenant, not by batch: a tenant with many batches gets no more', () => {
    const shares = allocateShares([batch('a1', 'A'), batch('a2', 'A'), batch('a3', 'A'), batch('b1', 'B')], 600, NOW, AGING_MS);
    expect(shares.get('b1')!.limit).toBe(300);
    expect(shares.get('a1')!.limit + shares.get('a2')!.limit + shares.get('a3')!.limit).toBe(300);
  });

  it('puts a late small tenant at the front of the queue, ahead of a busy tenant refilling', () => {
    const shares = allocateShares([batch('a1', 'A', { running: 19_000 }), batch('b1', 'B', { pending: 20 })], 20_000, NOW, AGING_MS);
    const busyRefill = leasePriority(shares.get('a1')!, 19_000);
    const lateSmall = leasePriority(shares.get('b1')!, 19);
    expect(lateSmall).toBeLessThan(busyRefill / 100);
    expect(busyRefill).toBe(LEASE_PRIORITY_SPAN + 1);
  });

  it('queues the refills of busy tenants of any weight at the same place, so they are served in arrival order', () => {
    const shares = allocateShares([batch('a1', 'A', { weight: 3, running: 28 }), batch('b1', 'B', { weight: 1, running: 9 })], 40, NOW, AGING_MS);
    expect(leasePriority(shares.get('b1')!, 9)).toBe(leasePriority(shares.get('a1')!, 28));
  });

  it('serves a tenant\'s higher priority first: the lower one gets what is left', () => {
    const shares = allocateShares([batch('low', 'A', { priority: -1 }), batch('high', 'A', { priority: 1, pending: 150 })], 200, NOW, AGING_MS);
    expect(shares.get('high')!.limit).toBe(150);
    expect(shares.get('low')!.limit).toBe(50);
  });

  it('gives a low priority nothing under a big high-priority batch until it has aged, then an equal share', () => {
    const fresh = allocateShares([batch('low', 'A', { priority: 0 }), batch('high', 'A', { priority: 3, createdAt: NOW })], 200, NOW, AGING_MS);
    expect(fresh.get('low')!.limit).toBe(0);
    const aged = allocateShares([batch('low', 'A', { priority: 0, createdAt: NOW - 3 * AGING_MS }), batch('high', 'A', { priority: 3 })], 200, NOW, AGING_MS);
    expect(aged.get('low')!.limit).toBe(100);
    expect(aged.get('high')!.limit).toBe(100);
  });

  it('queues a higher-priority batch\'s leases ahead of the same tenant\'s lower ones already out', () => {
    const shares = allocateShares([batch('low', 'A', { priority: 0, running: 100 }), batch('high', 'A', { priority: 2, pending: 10 })], 200, NOW, AGING_MS);
    expect(leasePriority(shares.get('high')!, 0)).toBeLessThan(leasePriority(shares.get('low')!, 100));
    expect(leasePriority(shares.get('low')!, 100)).toBeGreaterThan(leasePriority(shares.get('high')!, 9));
  });

  it('leaves batches with no work out of the split', () => {
    const shares = allocateShares([batch('a1', 'A', { pending: 0, running: 0 }), batch('b1', 'B')], 100, NOW, AGING_MS);
    expect(shares.get('b1')!.limit).toBe(100);
  });
});
