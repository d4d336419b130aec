import { createHmac } from 'node:crypto';
import { WEBHOOK_SECRET_PREFIX as PREFIX } from '../contracts/webhook-secret.js';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the signed content is
 * `${webhookId}.${timestampSeconds}.${body}`, the key the base64-decoded part of a `whsec_`
 * secret, the signature `v1,<base64 HMAC-SHA256>`. Pure: no clock, no storage.
 */

export { generateSecret } from '../contracts/webhook-secret.js';

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
}

/** One `v1,<base64>` signature of a message under one secret. */
export function sign(secret: string, webhookId: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${webhookId}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The three headers of a delivery; several secrets (a rotation's overlap) give space-separated signatures. */
export function signedHeaders(secrets: string[], webhookId: string, timestampSeconds: number, body: string): Record<string, string> {
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((s) => sign(s, webhookId, timestampSeconds, body)).join(' '),
  };
}
