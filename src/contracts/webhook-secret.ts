import { randomBytes } from 'node:crypto';

/**
 * Webhook signing secrets, Standard Webhooks style: `whsec_` + 32 random bytes in base64. The
 * store generates them for endpoints and batch webhooks, the signer (src/webhooks/signer.ts)
 * reads them back.
 */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/** A new secret: `whsec_` + 32 random bytes in base64. */
export function generateSecret(): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(32).toString('base64');
}
