/**
 * Index sets in the Kubernetes interval notation ("1,3-5,7"), as used by Indexed Jobs for
 * `completedIndexes` and `failedIndexes`. Every function here returns ranges in canonical form:
 * sorted by `first`, non-overlapping and non-adjacent, so equal sets always print the same string.
 */

/** An inclusive run of item indexes. */
export type IndexRange = { first: number; last: number };

function assertIndex(index: number, what: string): void {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${index}`);
  }
}

/** Sorts a copy and merges overlapping or touching ranges; throws on ranges that cannot exist. */
function normalize(ranges: readonly IndexRange[]): IndexRange[] {
  for (const r of ranges) {
    assertIndex(r.first, 'range first');
    assertIndex(r.last, 'range last');
    if (r.first > r.last) throw new RangeError(`range first ${r.first} is after last ${r.last}`);
  }
  const sorted = ranges.map((r) => ({ first: r.first, last: r.last })).sort((a, b) => a.first - b.first);
  const out: IndexRange[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    // `+ 1` merges adjacent runs too: "1-2,3-4" and "1-4" are the same set.
    if (prev !== undefined && r.first <= prev.last + 1) {
      prev.last = Math.max(prev.last, r.last);
    } else {
      out.push(r);
    }
  }
  return out;
}

/**
 * Formats ranges as Kubernetes interval notation, e.g. `[{first:1,last:1},{first:3,last:5}]` →
 * `"1,3-5"`. Like the job controller, a run of two prints as two indexes (`"0,1"`, the spelling
 * the pod-failure-policy example shows), a dash only for three or more. The input is normalized
 * first, so unsorted or overlapping ranges still print the canonical string; the empty set
 * prints `""`.
 */
export function formatIndexRanges(ranges: readonly IndexRange[]): string {
  return normalize(ranges)
    .map((r) => (r.first === r.last ? String(r.first) : `${r.first}${r.last === r.first + 1 ? ',' : '-'}${r.last}`))
    .join(',');
}

/**
 * Accumulates indexes that arrive in ascending order (item rows streamed `ORDER BY index`)
 * into ranges in O(1) per index, without holding the indexes themselves. A repeated index is
 * ignored; an index lower than the previous one throws, because it means the stream is not
 * ordered and the result would silently be wrong.
 */
export class IndexRangeBuilder {
  private readonly runs: IndexRange[] = [];
  private total = 0;

  add(index: number): void {
    assertIndex(index, 'index');
    const last = this.runs[this.runs.length - 1];
    if (last === undefined) {
      this.runs.push({ first: index, last: index });
    } else if (index === last.last) {
      return;
    } else if (index < last.last) {
      throw new RangeError(`index ${index} arrived after ${last.last}: indexes must be added in ascending order`);
    } else if (index === last.last + 1) {
      last.last = index;
    } else {
      this.runs.push({ first: index, last: index });
    }
    this.total++;
  }

  /** A copy, so callers cannot corrupt the builder's state. */
  ranges(): IndexRange[] {
    return this.runs.map((r) => ({ first: r.first, last: r.last }));
  }

  toString(): string {
    return formatIndexRanges(this.runs);
  }

  get count(): number {
    return this.total;
  }
}

/** Formats any collection of indexes (unsorted, with duplicates) as interval notation. */
export function formatIndexes(indexes: Iterable<number>): string {
  const sorted = [...indexes].sort((a, b) => a - b);
  const builder = new IndexRangeBuilder();
  for (const i of sorted) builder.add(i);
  return builder.toString();
}

const NUMBER = /^\d+$/;

function parseBound(s: string): number | undefined {
  const t = s.trim();
  if (!NUMBER.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Parses interval notation as tolerantly as the Kubernetes job controller does, because the
 * string may come from a Job status we did not write: malformed parts ("x", "3-", "5-2", "-1")
 * are skipped, with `total` any index `>= total` is dropped (a range crossing it is clipped), and
 * the result is sorted and merged whatever order the parts came in.
 */
export function parseIndexRanges(s: string, total?: number): IndexRange[] {
  const parts: IndexRange[] = [];
  if (s.trim() === '') return parts;
  for (const part of s.split(',')) {
    const bounds = part.split('-');
    if (bounds.length > 2) continue;
    const first = parseBound(bounds[0]);
    const last = bounds.length === 2 ? parseBound(bounds[1]) : first;
    if (first === undefined || last === undefined || first > last) continue;
    if (total !== undefined) {
      if (first >= total) continue;
      parts.push({ first, last: Math.min(last, total - 1) });
    } else {
      parts.push({ first, last });
    }
  }
  return normalize(parts);
}

/** How many indexes the ranges hold (assumes canonical, non-overlapping ranges). */
export function countIndexes(ranges: readonly IndexRange[]): number {
  let n = 0;
  for (const r of ranges) n += r.last - r.first + 1;
  return n;
}

/** The union of two index sets, in canonical form. */
export function mergeIndexRanges(a: readonly IndexRange[], b: readonly IndexRange[]): IndexRange[] {
  return normalize([...a, ...b]);
}

/** The indexes of `a` that are not in `b`, in canonical form (e.g. failed minus retried). */
export function subtractIndexRanges(a: readonly IndexRange[], b: readonly IndexRange[]): IndexRange[] {
  const left = normalize(a);
  const right = normalize(b);
  const out: IndexRange[] = [];
  let j = 0;
  for (const r of left) {
    let first = r.first;
    // Ranges of `b` that end before this range can never matter again: both lists are sorted.
    while (j < right.length && right[j].last < first) j++;
    let k = j;
    while (k < right.length && right[k].first <= r.last) {
      if (right[k].first > first) out.push({ first, last: right[k].first - 1 });
      first = Math.max(first, right[k].last + 1);
      k++;
    }
    if (first <= r.last) out.push({ first, last: r.last });
  }
  return out;
}

/** Whether index `i` is in the set; binary search, so it assumes canonical (sorted) ranges. */
export function hasIndex(ranges: readonly IndexRange[], i: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid];
    if (i < r.first) hi = mid - 1;
    else if (i > r.last) lo = mid + 1;
    else return true;
  }
  return false;
}
