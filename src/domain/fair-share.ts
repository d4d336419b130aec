/**
 * Fair share between tenants, priorities within one: how many items each queue batch of one task
 * queue may have out (released to Redis, waiting or running) and where its leases go in the
 * queue. Pure: the queue runtime feeds it the active batches read from the store on every
 * reconcile, so a restarted or newly elected dispatcher computes the same shares (nothing to
 * lose). The algorithm and why: docs/architecture.md#fair-share-and-priorities.
 */

/** One active batch competing for a task queue's release budget. */
export interface ShareCandidate {
  batchId: string;
  tenantId: string;
  /** the tenant's weight (≥ 1) */
  weight: number;
  /** the batch's own priority, higher first */
  priority: number;
  createdAt: number;
  parallelism: number;
  /** items out: released to Redis and not yet reported */
  running: number;
  /** items not yet released */
  pending: number;
}

export interface BatchShare {
  /** most items this batch may have out now */
  limit: number;
  /**
   * Queue rank of the batch's next released item within its tenant's share, as a fraction of
   * the share (0: the front; 1 and beyond: the back), before the batch's own items out are
   * added. See {@link leasePriority}.
   */
  rankBase: number;
  /** the tenant's nominal share of the budget (by weight among tenants with work) */
  tenantShare: number;
  /** the priority the batch competes with inside its tenant after aging */
  effectivePriority: number;
}

export const MIN_BATCH_PRIORITY = -1000;
export const MAX_BATCH_PRIORITY = 1000;

/** BullMQ's largest job priority is 2^21; lease priorities use 1 … LEASE_PRIORITY_SPAN + 1. */
export const LEASE_PRIORITY_SPAN = 1_000_000;

/**
 * A batch's priority after aging: one point more per `agingMs` since it was created, but never
 * above the highest own priority among its tenant's batches with work. So a low-priority batch
 * under a stream of high-priority ones climbs until it shares equally with them, and batches of
 * one priority (the usual case) stay equal whatever their age.
 */
export function agedPriority(priority: number, createdAt: number, ceiling: number, now: number, agingMs: number): number {
  if (priority >= ceiling) return priority;
  const aged = priority + Math.floor(Math.max(0, now - createdAt) / agingMs);
  return Math.min(ceiling, aged);
}

/** What a batch can use at most: its parallelism, and no more than it has left to run. */
function demandOf(c: ShareCandidate): number {
  return Math.min(c.parallelism, c.running + c.pending);
}

/**
 * Max-min fair split of `budget` between claimants with weights: each gets budget × weight / Σ
 * weights, except that one needing less gets what it needs and leaves the rest to the others.
 * Every claimant with a demand gets at least one item, so none is starved by rounding.
 */
export function waterFill<K>(budget: number, claims: { key: K; weight: number; demand: number }[]): Map<K, number> {
  const given = new Map<K, number>();
  let open = claims.filter((c) => c.demand > 0);
  for (const c of claims) if (c.demand <= 0) given.set(c.key, 0);
  let left = budget;
  while (open.length > 0) {
    const totalWeight = open.reduce((s, c) => s + c.weight, 0);
    const satisfied = open.filter((c) => c.demand <= (left * c.weight) / totalWeight);
    if (satisfied.length === 0) {
      for (const c of open) given.set(c.key, Math.max(1, Math.floor((left * c.weight) / totalWeight)));
      break;
    }
    for (const c of satisfied) {
      given.set(c.key, c.demand);
      left -= c.demand;
    }
    open = open.filter((c) => !satisfied.includes(c));
  }
  return given;
}

/**
 * Shares `budget` items out among the batches of one task queue:
 *
 * 1. Tenants with work split the budget by weight (max-min fair, {@link waterFill}): a tenant
 *    alone gets all of it, a tenant with a small batch gets what it needs.
 * 2. Inside a tenant, batches go by aged priority ({@link agedPriority}), highest first; each
 *    priority level takes what it needs of what the levels above left, split equally among its
 *    batches.
 *
 * The rank base puts a batch's leases behind the tenant's items of higher levels; dividing by
 * the tenant's nominal share makes ranks of tenants with different weights comparable.
 */
export function allocateShares(candidates: ShareCandidate[], budget: number, now: number, agingMs: number): Map<string, BatchShare> {
  const byTenant = new Map<string, ShareCandidate[]>();
  for (const c of candidates) {
    const list = byTenant.get(c.tenantId);
    if (list) list.push(c);
    else byTenant.set(c.tenantId, [c]);
  }
  const tenants = [...byTenant.entries()].map(([tenantId, batches]) => ({
    key: tenantId,
    weight: Math.max(1, batches[0].weight),
    demand: batches.reduce((s, b) => s + demandOf(b), 0),
    batches,
  }));
  const withWork = tenants.filter((t) => t.demand > 0);
  const totalWeight = withWork.reduce((s, t) => s + t.weight, 0) || 1;
  const tenantLimits = waterFill(budget, tenants);
  const out = new Map<string, BatchShare>();
  for (const t of tenants) {
    const tenantShare = Math.max(1, (budget * t.weight) / totalWeight);
    const ceiling = Math.max(...t.batches.filter((b) => demandOf(b) > 0).map((b) => b.priority), MIN_BATCH_PRIORITY);
    const levels = new Map<number, ShareCandidate[]>();
    for (const b of t.batches) {
      const level = agedPriority(b.priority, b.createdAt, ceiling, now, agingMs);
      const list = levels.get(level);
      if (list) list.push(b);
      else levels.set(level, [b]);
    }
    let left = tenantLimits.get(t.key) ?? 0;
    let ahead = 0;
    for (const level of [...levels.keys()].sort((a, b) => b - a)) {
      const batches = levels.get(level)!;
      const limits = waterFill(left, batches.map((b) => ({ key: b.batchId, weight: 1, demand: demandOf(b) })));
      for (const b of batches) {
        const limit = Math.min(left, limits.get(b.batchId) ?? 0);
        out.set(b.batchId, { limit, rankBase: ahead / tenantShare, tenantShare, effectivePriority: level });
      }
      const used = batches.reduce((s, b) => s + Math.min(demandOf(b), limits.get(b.batchId) ?? 0), 0);
      left = Math.max(0, left - used);
      ahead += batches.reduce((s, b) => s + b.running, 0);
    }
  }
  return out;
}

/**
 * Ranks from this fraction of a tenant's share on are all queued at the back, in arrival order.
 * Graded all the way to 1, the refills of a tenant with a small share would land ahead of those
 * of a tenant with a large one (its `(limit − 1) / limit` is smaller) and be served first every
 * time, so completions would follow the inverse of the weights.
 */
export const FRONT_OF_SHARE = 0.5;

/**
 * The BullMQ priority (lower first) of a lease whose first item is the `rank`-th of its batch's
 * items out: the tenant's items ahead of it plus its rank, as a fraction of the tenant's share.
 * A tenant with less than half its share out gets its leases ahead of every busy tenant's
 * refills, the fewer it has out the nearer the front: a late small tenant is not queued behind
 * a big one. Busy tenants (more out) refill at the back, where they are served first come,
 * first served, so each one's throughput follows how many items it has out (Little's law), which
 * the limits set by weight.
 */
export function leasePriority(share: BatchShare, rank: number): number {
  const position = share.rankBase + rank / share.tenantShare;
  if (position >= FRONT_OF_SHARE) return LEASE_PRIORITY_SPAN + 1;
  return 1 + Math.floor((position / FRONT_OF_SHARE) * LEASE_PRIORITY_SPAN);
}
