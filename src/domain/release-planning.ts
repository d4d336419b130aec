/**
 * Pure decisions of the control loop: how many items of a queue batch to release now and in
 * what lease sizes (the queue runtime), and when a batch's deadline passes (the dispatcher).
 * Kept apart from I/O so the numbers can be tested with tables.
 */

export interface ReleasePlanInput {
  parallelism: number;
  running: number;
  pending: number;
  /** most items of one batch out in Redis at once, so a huge batch cannot starve the others */
  window: number;
  /** largest lease range */
  maxLeaseSize: number;
}

export interface ReleasePlan {
  count: number;
  leaseSize: number;
}

/**
 * Releases up to `min(parallelism, window) - running` items. Leases are sized so a release is
 * spread over about 16 ranges: with a small parallelism every item travels alone (parallelism 3
 * gives three single-item leases that any worker may take), with a large one leases grow to
 * `maxLeaseSize` so fast tasks pay the queue cost once per range, not once per item.
 *
 * While items are out, a release waits until a sixteenth of that limit is free (unless all that
 * is pending fits): otherwise every report of a full window frees a few slots and releases them
 * at once, in ever smaller leases, each release and each of their reports a transaction on the
 * batch's row. The workers meanwhile still hold fifteen sixteenths of the limit.
 */
export function planRelease(p: ReleasePlanInput): ReleasePlan {
  const limit = Math.min(p.parallelism, p.window);
  const room = limit - p.running;
  const worthIt = p.running === 0 || room >= Math.ceil(limit / 16) || p.pending <= room;
  const count = worthIt ? Math.max(0, Math.min(room, p.pending)) : 0;
  const leaseSize = Math.max(1, Math.min(p.maxLeaseSize, Math.ceil(count / 16)));
  return { count, leaseSize };
}

/** When a deadline set by `activeDeadlineSeconds` passes, or null when none is set. */
export function deadlineAt(startTime: string | null, activeDeadlineSeconds: number | undefined): number | null {
  if (!startTime || activeDeadlineSeconds === undefined) return null;
  return Date.parse(startTime) + activeDeadlineSeconds * 1000;
}
