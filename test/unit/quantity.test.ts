import { describe, expect, test } from 'vitest';
import { parseQuantity, quantityProblem } from '../../src/domain/quantity.js';

describe('parseQuantity', () => {
  test.each<{ s: string; want: number }>([
    { s: '1', want: 1 },
    { s: '0', want: 0 },
    { s: '0.5', want: 0.5 },
    { s: '.5', want: 0.5 },
    { s: '5.', want: 5 },
    { s: '+2', want: 2 },
    { s: '100m', want: 0.1 },
    { s: '250u', want: 0.00025 },
    { s: '3n', want: 3e-9 },
    { s: '2k', want: 2000 },
    { s: '1M', want: 1e6 },
    { s: '1G', want: 1e9 },
    { s: '1T', want: 1e12 },
    { s: '1P', want: 1e15 },
    { s: '1E', want: 1e18 },
    { s: '1Ki', want: 1024 },
    { s: '128Mi', want: 128 * 2 ** 20 },
    { s: '1Gi', want: 2 ** 30 },
    { s: '1.5Gi', want: 1.5 * 2 ** 30 },
    { s: '1Ti', want: 2 ** 40 },
    { s: '1Pi', want: 2 ** 50 },
    { s: '1Ei', want: 2 ** 60 },
    { s: '2e3', want: 2000 },
    { s: '2E3', want: 2000 },
    { s: '1e-3', want: 0.001 },
    { s: '1e+2', want: 100 },
  ])('$s = $want', ({ s, want }) => {
    expect(parseQuantity(s)).toBeCloseTo(want, 12);
    expect(quantityProblem(s)).toBeUndefined();
  });

  test.each([
    '', '1GB', '-1', '-100m', 'abc', '1 Gi', ' 1', '1gi', '1KI', 'Gi', '.', '1..2', '1e', '1e1.5', 'e3', '1Mi1', '0x10', '1,5', 'Infinity', 'NaN', '1e400',
    '1'.repeat(65),
  ])('rejects %j, naming it', (s) => {
    expect(parseQuantity(s)).toBeNull();
    const problem = quantityProblem(s);
    expect(problem).toBeDefined();
    expect(problem).toContain(JSON.stringify(s.length > 64 ? s.slice(0, 64) + '…' : s));
  });

  test('compares requests with limits across suffixes', () => {
    expect(parseQuantity('1500m')!).toBeGreaterThan(parseQuantity('1')!);
    expect(parseQuantity('1Gi')!).toBeGreaterThan(parseQuantity('1G')!);
    expect(parseQuantity('1000Mi')!).toBeLessThan(parseQuantity('1Gi')!);
  });
});
