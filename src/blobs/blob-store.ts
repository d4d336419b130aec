/**
 * Where results too large to keep inline in the store live. A port: callers never see paths,
 * only keys the store hands out, so a directory and object storage fit behind it alike.
 *
 * The rule every adapter keeps: a blob is published whole under a key no other upload can get,
 * and an existing blob is never overwritten. Two uploads for the same item and attempt therefore
 * never share anything; the store of record (SQLite) decides which key is kept, and the loser
 * deletes only its own key.
 */
/**
 * The object storage cannot be reached (no answer, a refused connection, a 5xx): nothing was
 * stored, and the request may be sent again later (the API answers 503 with Retry-After).
 */
export class BlobStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlobStoreUnavailableError';
  }
}

export interface BlobStore {
  /**
   * Streams `body` into a new blob and publishes it under a fresh key that starts with
   * `<batchId>/<name>.` (the name is for people reading a listing; uniqueness comes from the
   * store). Nothing is visible under the key until the whole body is stored. If `body` throws
   * (client gone, over a limit), nothing is left behind and the error is rethrown as is.
   */
  put(batchId: string, name: string, body: AsyncIterable<Uint8Array>): Promise<string>;
  /** The bytes of a published blob, streamed. */
  read(key: string): AsyncIterable<Uint8Array>;
  /** Removes one blob; a key that is already gone is fine. */
  delete(key: string): Promise<void>;
  /** Removes every blob of a batch (after the batch was deleted from the store). */
  deleteBatch(batchId: string): Promise<void>;
  /**
   * Removes what uploads interrupted by a crash left behind: partial data untouched for at least
   * `olderThanMs`. Uploads in progress keep theirs. Returns how many were removed.
   */
  sweepStale(olderThanMs: number, now?: number): Promise<number>;
}
