import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Dashboard sessions: a cookie holding `v1.<payload>.<mac>`, where the payload is the tenant id,
 * the id of the API key the session was opened with and an expiry (base64url JSON) and the mac an
 * HMAC-SHA256 of it under the server secret. The API key itself never leaves the login request;
 * nothing is stored server-side. A session ends when it expires, when the server secret changes,
 * and when its key is revoked or expires or its tenant is disabled: the dashboard checks the
 * key's row on every request (src/api/ui/ui-router.ts). A cookie without a key id (made before
 * keys were named in it) is no session: log in again.
 */

export const SESSION_COOKIE = 'fanout_session';
/** How long a login lasts. */
export const SESSION_TTL_MS = 12 * 3600 * 1000;

export interface Session {
  tenantId: string;
  /** the API key the session was opened with */
  keyId: string;
  /** epoch ms */
  expiresAt: number;
}

// A purpose prefix, so a MAC made for something else under the same secret (worker tokens) never verifies as a session.
const mac = (secret: string, payload: string) => createHmac('sha256', secret).update(`ui-session:${payload}`).digest('base64url');

export function signSession(secret: string, s: Session): string {
  const payload = Buffer.from(JSON.stringify({ t: s.tenantId, k: s.keyId, exp: s.expiresAt })).toString('base64url');
  return `v1.${payload}.${mac(secret, payload)}`;
}

/** The session a token carries, or null when it is malformed, forged or expired at `now`. */
export function verifySession(secret: string, token: string | undefined, now: number): Session | null {
  if (!token || token.length > 1024) return null;
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== 'v1') return null;
  const [, payload, sig] = parts;
  const want = Buffer.from(mac(secret, payload));
  const got = Buffer.from(sig);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const { t, k, exp } = (body ?? {}) as { t?: unknown; k?: unknown; exp?: unknown };
  if (typeof t !== 'string' || t.length === 0 || typeof k !== 'string' || k.length === 0 || typeof exp !== 'number' || !Number.isFinite(exp)) return null;
  if (exp <= now) return null;
  return { tenantId: t, keyId: k, expiresAt: exp };
}

/**
 * CSRF check for state-changing dashboard requests: the browser must say the request comes from
 * this origin. `Origin` wins when present (compared by host with the request's `Host`);
 * without it, `Sec-Fetch-Site: same-origin` is accepted. Anything else (no headers, `null`
 * origins, other sites) is refused.
 */
export function isSameOrigin(h: { origin?: string | null; secFetchSite?: string | null; host?: string | null }): boolean {
  if (h.origin) {
    if (h.origin === 'null' || !h.host) return false;
    try {
      const u = new URL(h.origin);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.host.toLowerCase() === h.host.toLowerCase();
    } catch {
      return false;
    }
  }
  return h.secFetchSite === 'same-origin';
}
