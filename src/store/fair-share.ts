import { all, type Op } from './op.js';
import type { ShareCandidate } from '../domain/fair-share.js';

/**
 * The active batches that compete for one task's work queue, with their tenant's weight: the
 * input of `allocateShares` (src/domain/fair-share.ts). Batches with Kubernetes workers of their
 * own use a queue of their own and compete with nobody, and
 * halted or suspended batches release nothing: the caller leaves both out.
 */
export function shareCandidates(task: string): Op<(ShareCandidate & { spec: string; decisions: string })[]> {
  return all<ShareCandidate & { spec: string; decisions: string }>(
    `SELECT b.id AS "batchId", b.tenant_id AS "tenantId", t.weight, b.priority, b.created_at AS "createdAt", b.parallelism, b.running, b.pending, b.spec, b.decisions
       FROM batches b JOIN tenants t ON t.id = b.tenant_id
      WHERE b.state = 'active' AND b.task = ?`,
    task,
  );
}
