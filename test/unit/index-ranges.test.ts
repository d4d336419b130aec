import { describe, expect, test } from 'vitest';
import {
  countIndexes,
  formatIndexes,
  formatIndexRanges,
  hasIndex,
  IndexRangeBuilder,
  mergeIndexRanges,
  parseIndexRanges,
  subtractIndexRanges,
  type IndexRange,
} from '../../src/domain/index-ranges.js';

const r = (first: number, last = first): IndexRange => ({ first, last });
const BIG = Number.MAX_SAFE_INTEGER;

describe('formatIndexRanges', () => {
  test.each([
    { name: 'empty set', ranges: [], want: '' },
    { name: 'single index', ranges: [r(0)], want: '0' },
    { name: 'single range', ranges: [r(0, 2)], want: '0-2' },
    { name: 'mixed', ranges: [r(1), r(3, 5), r(7)], want: '1,3-5,7' },
    { name: 'unsorted input is sorted', ranges: [r(7), r(1), r(3, 5)], want: '1,3-5,7' },
    { name: 'adjacent ranges merge', ranges: [r(1, 2), r(3, 4)], want: '1-4' },
    { name: 'overlapping ranges merge', ranges: [r(1, 5), r(3, 9), r(2)], want: '1-9' },
    { name: 'a run of two prints as two indexes, like the job controller', ranges: [r(4, 5)], want: '4,5' },
    { name: 'huge index', ranges: [r(BIG - 1, BIG)], want: `${BIG - 1},${BIG}` },
  ])('$name', ({ ranges, want }) => {
    expect(formatIndexRanges(ranges)).toBe(want);
  });

  test.each([
    { name: 'first after last', ranges: [r(5, 3)], err: 'range first 5 is after last 3' },
    { name: 'negative first', ranges: [r(-1, 3)], err: 'range first must be a non-negative safe integer, got -1' },
    { name: 'fractional last', ranges: [r(1, 2.5)], err: 'range last must be a non-negative safe integer, got 2.5' },
    { name: 'NaN', ranges: [r(Number.NaN)], err: 'got NaN' },
  ])('rejects $name', ({ ranges, err }) => {
    expect(() => formatIndexRanges(ranges)).toThrow(err);
  });
});

describe('IndexRangeBuilder', () => {
  test.each([
    { name: 'nothing added', adds: [], ranges: [], str: '', count: 0 },
    { name: 'one index', adds: [4], ranges: [r(4)], str: '4', count: 1 },
    { name: 'consecutive run', adds: [0, 1, 2], ranges: [r(0, 2)], str: '0-2', count: 3 },
    { name: 'gaps', adds: [1, 3, 4, 5, 7], ranges: [r(1), r(3, 5), r(7)], str: '1,3-5,7', count: 5 },
    { name: 'duplicates ignored', adds: [1, 1, 2, 2, 2, 5, 5], ranges: [r(1, 2), r(5)], str: '1,2,5', count: 3 },
    { name: 'zero then huge', adds: [0, BIG], ranges: [r(0), r(BIG)], str: `0,${BIG}`, count: 2 },
  ])('$name', ({ adds, ranges, str, count }) => {
    const b = new IndexRangeBuilder();
    for (const i of adds) b.add(i);
    expect(b.ranges()).toEqual(ranges);
    expect(b.toString()).toBe(str);
    expect(b.count).toBe(count);
  });

  test.each([
    { name: 'descending index', adds: [3, 2], err: 'index 2 arrived after 3: indexes must be added in ascending order' },
    { name: 'back into an earlier run', adds: [1, 2, 3, 1], err: 'index 1 arrived after 3' },
    { name: 'negative index', adds: [-1], err: 'index must be a non-negative safe integer, got -1' },
    { name: 'fractional index', adds: [1.5], err: 'got 1.5' },
    { name: 'unsafe integer', adds: [2 ** 53], err: 'non-negative safe integer' },
  ])('throws on $name', ({ adds, err }) => {
    const b = new IndexRangeBuilder();
    expect(() => {
      for (const i of adds) b.add(i);
    }).toThrow(err);
  });

  test('a rejected add leaves the builder unchanged', () => {
    const b = new IndexRangeBuilder();
    b.add(5);
    expect(() => b.add(4)).toThrow(RangeError);
    b.add(6);
    expect(b.toString()).toBe('5,6');
    expect(b.count).toBe(2);
  });

  test('ranges() is a copy', () => {
    const b = new IndexRangeBuilder();
    b.add(1);
    b.ranges()[0].last = 100;
    expect(b.toString()).toBe('1');
  });

  test('a million indexes stay a single range', () => {
    const b = new IndexRangeBuilder();
    for (let i = 0; i < 1_000_000; i++) b.add(i);
    expect(b.toString()).toBe('0-999999');
    expect(b.count).toBe(1_000_000);
  });
});

describe('formatIndexes', () => {
  test.each([
    { name: 'empty', indexes: [], want: '' },
    { name: 'sorted', indexes: [1, 3, 4, 5, 7], want: '1,3-5,7' },
    { name: 'unsorted', indexes: [7, 5, 1, 4, 3], want: '1,3-5,7' },
    { name: 'duplicates', indexes: [2, 2, 1, 1, 0], want: '0-2' },
    { name: 'numeric not lexical sort', indexes: [10, 9, 100], want: '9,10,100' },
  ])('$name', ({ indexes, want }) => {
    expect(formatIndexes(indexes)).toBe(want);
  });

  test('accepts any iterable', () => {
    expect(formatIndexes(new Set([3, 1, 2]))).toBe('1-3');
  });

  test('rejects a negative index', () => {
    expect(() => formatIndexes([1, -2])).toThrow('got -2');
  });
});

describe('parseIndexRanges', () => {
  test.each([
    { name: 'empty string', s: '', total: undefined, want: [] },
    { name: 'whitespace only', s: '   ', total: undefined, want: [] },
    { name: 'single index', s: '3', total: undefined, want: [r(3)] },
    { name: 'kubernetes example', s: '1,3-5,7', total: 10, want: [r(1), r(3, 5), r(7)] },
    { name: 'unsorted parts are sorted', s: '7,1,3-5', total: 10, want: [r(1), r(3, 5), r(7)] },
    { name: 'adjacent parts merge', s: '1-2,3,4-6', total: 10, want: [r(1, 6)] },
    { name: 'overlapping parts merge', s: '1-5,3-8,2', total: 10, want: [r(1, 8)] },
    { name: 'duplicates merge', s: '2,2,2', total: 10, want: [r(2)] },
    { name: 'index equal to total dropped', s: '1,10', total: 10, want: [r(1)] },
    { name: 'range crossing total is clipped', s: '8-12', total: 10, want: [r(8, 9)] },
    { name: 'total 0 drops everything', s: '0,1-3', total: 0, want: [] },
    { name: 'no total keeps huge indexes', s: `0,${BIG}`, total: undefined, want: [r(0), r(BIG)] },
    { name: 'non-number part skipped', s: '1,x,3', total: 10, want: [r(1), r(3)] },
    { name: 'open range skipped', s: '1,3-,5', total: 10, want: [r(1), r(5)] },
    { name: 'negative skipped', s: '-1,2', total: 10, want: [r(2)] },
    { name: 'reversed range skipped', s: '5-2,7', total: 10, want: [r(7)] },
    { name: 'three-part range skipped', s: '1-2-3,4', total: 10, want: [r(4)] },
    { name: 'fraction skipped', s: '1.5,2', total: 10, want: [r(2)] },
    { name: 'exponent skipped', s: '1e2,2', total: undefined, want: [r(2)] },
    { name: 'plus sign skipped', s: '+3,4', total: 10, want: [r(4)] },
    { name: 'beyond safe integers skipped', s: '99999999999999999999,1', total: undefined, want: [r(1)] },
    { name: 'empty parts skipped', s: ',,1,,', total: 10, want: [r(1)] },
    { name: 'spaces around numbers tolerated', s: ' 1 , 3 - 4 ', total: 10, want: [r(1), r(3, 4)] },
    { name: 'leading zeros read as decimal', s: '010', total: 20, want: [r(10)] },
  ])('$name', ({ s, total, want }) => {
    expect(parseIndexRanges(s, total)).toEqual(want);
  });

  test.each(['', '0', '1,3-5,7', '0-999999', `5,${BIG}`])('round-trips %j', (s) => {
    expect(formatIndexRanges(parseIndexRanges(s))).toBe(s);
  });
});

describe('countIndexes', () => {
  test.each([
    { name: 'empty', ranges: [], want: 0 },
    { name: 'single', ranges: [r(4)], want: 1 },
    { name: 'mixed', ranges: [r(1), r(3, 5), r(7)], want: 5 },
    { name: 'whole safe range', ranges: [r(0, BIG - 1)], want: BIG },
  ])('$name', ({ ranges, want }) => {
    expect(countIndexes(ranges)).toBe(want);
  });
});

describe('mergeIndexRanges', () => {
  test.each([
    { name: 'both empty', a: [], b: [], want: [] },
    { name: 'left empty', a: [], b: [r(1, 2)], want: [r(1, 2)] },
    { name: 'disjoint', a: [r(1)], b: [r(5)], want: [r(1), r(5)] },
    { name: 'touching', a: [r(1, 3)], b: [r(4, 6)], want: [r(1, 6)] },
    { name: 'overlapping', a: [r(1, 5)], b: [r(3, 8)], want: [r(1, 8)] },
    { name: 'contained', a: [r(0, 10)], b: [r(3, 4)], want: [r(0, 10)] },
    { name: 'interleaved', a: [r(0), r(4), r(8)], b: [r(2), r(6)], want: [r(0), r(2), r(4), r(6), r(8)] },
    { name: 'filling a gap', a: [r(0, 1), r(3, 4)], b: [r(2)], want: [r(0, 4)] },
  ])('$name', ({ a, b, want }) => {
    expect(mergeIndexRanges(a, b)).toEqual(want);
  });

  test('does not mutate its inputs', () => {
    const a = [r(1, 3)];
    const b = [r(2, 6)];
    mergeIndexRanges(a, b);
    expect(a).toEqual([r(1, 3)]);
    expect(b).toEqual([r(2, 6)]);
  });
});

describe('subtractIndexRanges', () => {
  test.each([
    { name: 'nothing from nothing', a: [], b: [r(1)], want: [] },
    { name: 'nothing removed', a: [r(1, 5)], b: [], want: [r(1, 5)] },
    { name: 'disjoint', a: [r(1, 3)], b: [r(5, 7)], want: [r(1, 3)] },
    { name: 'hole in the middle', a: [r(0, 9)], b: [r(3, 4)], want: [r(0, 2), r(5, 9)] },
    { name: 'cut the start', a: [r(0, 9)], b: [r(0, 2)], want: [r(3, 9)] },
    { name: 'cut the end', a: [r(0, 9)], b: [r(7, 12)], want: [r(0, 6)] },
    { name: 'remove everything', a: [r(2, 4)], b: [r(0, 10)], want: [] },
    { name: 'exact match', a: [r(1), r(3, 5)], b: [r(1), r(3, 5)], want: [] },
    { name: 'several holes', a: [r(0, 10)], b: [r(1), r(3, 4), r(9)], want: [r(0), r(2), r(5, 8), r(10)] },
    { name: 'one b range spans several a ranges', a: [r(0, 2), r(4, 6), r(8, 10)], b: [r(1, 9)], want: [r(0), r(10)] },
    { name: 'unsorted b', a: [r(0, 10)], b: [r(9), r(1)], want: [r(0), r(2, 8), r(10)] },
    { name: 'failed minus retried', a: parseIndexRanges('1,3-5,7'), b: parseIndexRanges('3,7'), want: [r(1), r(4, 5)] },
  ])('$name', ({ a, b, want }) => {
    expect(subtractIndexRanges(a, b)).toEqual(want);
  });
});

describe('hasIndex', () => {
  const set = parseIndexRanges('1,3-5,7,100-200');
  test.each([
    { name: 'below everything', i: 0, want: false },
    { name: 'single', i: 1, want: true },
    { name: 'gap', i: 2, want: false },
    { name: 'range start', i: 3, want: true },
    { name: 'range middle', i: 4, want: true },
    { name: 'range end', i: 5, want: true },
    { name: 'between ranges', i: 50, want: false },
    { name: 'last range end', i: 200, want: true },
    { name: 'past everything', i: 201, want: false },
    { name: 'negative', i: -1, want: false },
  ])('$name', ({ i, want }) => {
    expect(hasIndex(set, i)).toBe(want);
  });

  test('empty set has nothing', () => {
    expect(hasIndex([], 0)).toBe(false);
  });
});
