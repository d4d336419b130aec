import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { generateSecret, sign, signedHeaders } from '../../src/webhooks/signer.js';

/** Our signer checked against the standardwebhooks package, an independent implementation. */
describe('Standard Webhooks signer', () => {
  const body = JSON.stringify({ type: 'batch.succeeded', timestamp: '2026-11-29T00:00:00.000Z', data: { batchId: 'b1' } });

  it('produces signatures standardwebhooks verifies', () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const now = Math.floor(Date.now() / 1000);
    const headers = signedHeaders([secret], 'msg_evt1', now, body);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    // the same bytes the package signs
    expect(sign(secret, 'msg_evt1', now, body)).toBe(new Webhook(secret).sign('msg_evt1', new Date(now * 1000), body));
  });

  it('a changed body, id or timestamp does not verify', () => {
    const secret = generateSecret();
    const now = Math.floor(Date.now() / 1000);
    const headers = signedHeaders([secret], 'msg_evt1', now, body);
    expect(() => new Webhook(secret).verify(body + ' ', headers)).toThrow();
    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'msg_other' })).toThrow();
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
  });

  it('during a rotation both secrets verify', () => {
    const [current, previous] = [generateSecret(), generateSecret()];
    const headers = signedHeaders([current, previous], 'msg_evt2', Math.floor(Date.now() / 1000), body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(current).verify(body, headers)).toBeTruthy();
    expect(new Webhook(previous).verify(body, headers)).toBeTruthy();
  });
});
