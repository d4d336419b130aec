import type { Logger } from 'pino';
import type { BlobStore } from './blob-store.js';

/**
 * Partial uploads older than this are left by a crash: an upload in progress writes more often
 * than that (a client stalled this long has lost its request long before).
 */
export const STALE_PARTIAL_MS = 60 * 60 * 1000;
const SWEEP_EVERY_MS = 10 * 60 * 1000;

/**
 * Sweeps the blob store's stale partial uploads now and then every few minutes, for the process
 * that receives uploads (the API). Several API processes may share one store: each sweeps only
 * what no live upload is still writing. Returns a stop function.
 */
export function startStaleBlobSweeps(blobs: BlobStore, logger: Logger): () => void {
  const sweep = () =>
    blobs.sweepStale(STALE_PARTIAL_MS).then(
      (removed) => {
        if (removed > 0) logger.warn({ removed }, 'removed partial result uploads left by a crash');
      },
      (err) => logger.warn({ err: (err as Error).message }, 'could not sweep partial result uploads'),
    );
  void sweep();
  const timer = setInterval(() => void sweep(), SWEEP_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
