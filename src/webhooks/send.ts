import http from 'node:http';
import https from 'node:https';
import type { Allowlist } from '../domain/address-policy.js';
import { checkedLookup, RefusedTargetError, targetRefusal } from './target-check.js';

/**
 * One HTTP attempt of a webhook: POST the body with its headers, at most `timeoutMs` in all,
 * keep at most 1 KiB of the answer. Never throws: every way it can end is a result.
 */

export const RESPONSE_EXCERPT_BYTES = 1024;

export interface SendResult {
  statusCode: number | null;
  latencyMs: number;
  response: string | null;
  error: string | null;
  /** the policy refused the target (not retried any differently, but said so) */
  refused?: boolean;
}

export async function sendWebhook(url: string, headers: Record<string, string>, body: string, timeoutMs: number, allow: Allowlist): Promise<SendResult> {
  const started = Date.now();
  const refusal = await targetRefusal(url, allow);
  if (refusal) return { statusCode: null, latencyMs: Date.now() - started, response: null, error: `refused: ${refusal}`, refused: true };
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise<SendResult>((resolve) => {
    let done = false;
    const finish = (r: Omit<SendResult, 'latencyMs'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...r, latencyMs: Date.now() - started });
    };
    const req = client.request(
      target,
      {
        method: 'POST',
        lookup: checkedLookup(allow),
        headers: { 'content-type': 'application/json', 'user-agent': 'fanout-webhooks/1', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < RESPONSE_EXCERPT_BYTES) chunks.push(chunk.subarray(0, RESPONSE_EXCERPT_BYTES - size));
          size += chunk.length;
          // Enough read: the rest of a large answer is not ours to hold.
          if (size >= RESPONSE_EXCERPT_BYTES) res.destroy();
        });
        const end = () => finish({ statusCode: res.statusCode ?? null, response: Buffer.concat(chunks).toString('utf8'), error: null });
        res.on('end', end);
        res.on('close', end);
        res.on('error', end);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ statusCode: null, response: null, error: `timed out after ${timeoutMs} ms` });
    }, timeoutMs);
    req.on('error', (err) => {
      finish({ statusCode: null, response: null, error: err instanceof RefusedTargetError ? `refused: ${err.message}` : err.message, refused: err instanceof RefusedTargetError });
    });
    req.end(body);
  });
}
