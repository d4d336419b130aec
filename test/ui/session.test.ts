import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSameOrigin, signSession, verifySession } from '../../src/api/ui/session.js';
import { safeNext } from '../../src/api/ui/ui-router.js';

const SECRET = 'a'.repeat(64);

/** A cookie in the format sessions had before they named their key, with a valid mac. */
function signedWithoutKey(): string {
  const payload = Buffer.from(JSON.stringify({ t: 't_1234', exp: NOW + 60_000 })).toString('base64url');
  return `v1.${payload}.${createHmac('sha256', SECRET).update(`ui-session:${payload}`).digest('base64url')}`;
}
const NOW = 1_800_000_000_000;

describe('dashboard session tokens', () => {
  const token = signSession(SECRET, { tenantId: 't_1234', keyId: 'k_1', expiresAt: NOW + 60_000 });

  it('round-trips tenant and expiry', () => {
    expect(verifySession(SECRET, token, NOW)).toEqual({ tenantId: 't_1234', keyId: 'k_1', expiresAt: NOW + 60_000 });
  });

  const [v, payload, sig] = token.split('.');
  const otherPayload = Buffer.from(JSON.stringify({ t: 't_other', exp: NOW + 60_000 })).toString('base64url');
  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['expired', token, NOW + 60_000],
    ['another secret', signSession('b'.repeat(64), { tenantId: 't_1234', keyId: 'k_1', expiresAt: NOW + 60_000 })],
    ['payload swapped (other tenant, old mac)', `${v}.${otherPayload}.${sig}`],
    ['mac cut short', `${v}.${payload}.${sig.slice(0, -2)}`],
    ['mac flipped', `${v}.${payload}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`],
    ['other version', `v2.${payload}.${sig}`],
    ['two parts', `${v}.${payload}`],
    ['junk', 'not-a-token'],
    ['huge', 'v1.' + 'a'.repeat(5000) + '.x'],
    ['no key id (a cookie from before sessions named their key), signed right', signedWithoutKey()],
  ] as [string, string | undefined, number?][])('rejects %s', (_name, t, now = NOW) => {
    expect(verifySession(SECRET, t, now)).toBeNull();
  });

  it('never contains anything but tenant, key id and expiry', () => {
    const body = JSON.parse(Buffer.from(payload, 'base64url').toString());
    expect(Object.keys(body).sort()).toEqual(['exp', 'k', 't']);
  });
});

describe('same-origin check (CSRF)', () => {
  it.each([
    ['Origin matches Host', { origin: 'http://127.0.0.1:8080', host: '127.0.0.1:8080' }, true],
    ['https Origin matches Host', { origin: 'https://fanout.example.com', host: 'fanout.example.com' }, true],
    ['Host case differs', { origin: 'http://Fanout.Example.com', host: 'fanout.example.com' }, true],
    ['Origin of another site', { origin: 'http://evil.example', host: '127.0.0.1:8080' }, false],
    ['Origin on another port', { origin: 'http://127.0.0.1:9999', host: '127.0.0.1:8080' }, false],
    ['Origin wins over Sec-Fetch-Site', { origin: 'http://evil.example', secFetchSite: 'same-origin', host: 'a' }, false],
    ['Origin null', { origin: 'null', host: '127.0.0.1:8080' }, false],
    ['Origin not a URL', { origin: 'garbage', host: '127.0.0.1:8080' }, false],
    ['Origin with another scheme', { origin: 'file://127.0.0.1:8080', host: '127.0.0.1:8080' }, false],
    ['no Host', { origin: 'http://127.0.0.1:8080' }, false],
    ['Sec-Fetch-Site same-origin, no Origin', { secFetchSite: 'same-origin', host: 'a' }, true],
    ['Sec-Fetch-Site same-site', { secFetchSite: 'same-site', host: 'a' }, false],
    ['Sec-Fetch-Site cross-site', { secFetchSite: 'cross-site', host: 'a' }, false],
    ['no headers at all', { host: 'a' }, false],
  ])('%s', (_name, h, want) => {
    expect(isSameOrigin(h)).toBe(want);
  });
});

describe('login redirect target', () => {
  it.each([
    ['/ui/batches/b123?status=failed', '/ui/batches/b123?status=failed'],
    ['/ui', '/ui'],
    ['https://evil.example/ui', '/ui/batches'],
    ['//evil.example/ui', '/ui/batches'],
    ['/uievil', '/ui/batches'],
    ['/ui/\\evil', '/ui/batches'],
    ['/v1/batches', '/ui/batches'],
    [undefined, '/ui/batches'],
  ])('%s → %s', (next, want) => {
    expect(safeNext(next)).toBe(want);
  });
});
