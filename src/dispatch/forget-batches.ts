import type { BlobStore } from '../blobs/blob-store.js';
import type { DeletedBatch } from '../store/batch-queries.js';

export type { DeletedBatch } from '../store/batch-queries.js';

export interface ForgetDeps {
  /** unset: no blob results to remove (a dispatcher built without a blob store) */
  blobs?: BlobStore;
  /** halts the batches in Redis and removes their leases from the work queues */
  forgetInRedis(deleted: DeletedBatch[]): Promise<void>;
  /** wakes the dispatcher, which removes their Jobs, Services and Secrets from Kubernetes */
  notify(batchId: string): void;
}

/**
 * After a delete commits: drop the batches' results from the blob store and their work from
 * Redis, and let the dispatcher clean Kubernetes. One path for DELETE /v1/batches and for the
 * history a schedule prunes.
 */
export async function forgetBatches(deps: ForgetDeps, deleted: DeletedBatch[]): Promise<void> {
  if (deleted.length === 0) return;
  if (deps.blobs) for (const d of deleted) await deps.blobs.deleteBatch(d.id);
  await deps.forgetInRedis(deleted);
  for (const d of deleted) deps.notify(d.id);
}
