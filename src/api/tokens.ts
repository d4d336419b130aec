import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Batch-scoped worker tokens: an HMAC of the batch id under the server secret. A token lets a
 * worker read inputs and write results of that one batch and nothing else; it needs no storage.
 */
export function batchTokens(secret: string) {
  const sign = (batchId: string) => `fbt_${createHmac('sha256', secret).update(`batch:${batchId}`).digest('base64url')}`;
  return {
    sign,
    verify(batchId: string, token: string): boolean {
      const want = Buffer.from(sign(batchId));
      const got = Buffer.from(token);
      return want.length === got.length && timingSafeEqual(want, got);
    },
  };
}
