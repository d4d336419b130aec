import { get, run, type Op } from './op.js';

/**
 * Leadership of a role one process at a time may hold (the dispatcher), as a lease row with a
 * fencing token: docs/architecture.md#leader-election. The holder renews before the lease ends;
 * any other process takes over once it has ended, and the token goes up by one with each new
 * holder. Times are the callers' clocks (epoch ms): keep the machines' clocks in sync (NTP)
 * well within the lease time.
 */

export interface Leadership {
  name: string;
  holder: string;
  token: number;
  expiresAt: number;
}

const SELECT = 'SELECT name, holder, token, expires_at AS "expiresAt" FROM leader_leases WHERE name = ?';

/**
 * Takes the lease when nobody holds it or the holder's has ended, or renews it for a holder that
 * still has it. Returns the lease as it now stands: led by `holder` or by someone else.
 */
export function* claimLeadership(name: string, holder: string, now: number, leaseMs: number): Op<Leadership> {
  yield* run(
    `INSERT INTO leader_leases (name, holder, token, expires_at) VALUES (?, ?, 1, ?)
     ON CONFLICT (name) DO UPDATE SET
       token = CASE WHEN leader_leases.holder = excluded.holder AND leader_leases.expires_at > ? THEN leader_leases.token ELSE leader_leases.token + 1 END,
       holder = excluded.holder,
       expires_at = excluded.expires_at
     WHERE leader_leases.holder = excluded.holder OR leader_leases.expires_at <= ?`,
    name,
    holder,
    now + leaseMs,
    now,
    now,
  );
  return (yield* get<Leadership>(SELECT, name))!;
}

/** Ends a holder's lease at once (a clean stop): a standby need not wait for it to run out. */
export function* resignLeadership(name: string, holder: string, token: number): Op<void> {
  yield* run('UPDATE leader_leases SET expires_at = 0 WHERE name = ? AND holder = ? AND token = ?', name, holder, token);
}

/** Thrown inside a fenced write whose leadership has passed to another holder, or run out. */
export class FencedOffError extends Error {
  constructor(name: string, token: number) {
    super(`leadership of ${name} with token ${token} is no longer held: the write is refused`);
    this.name = 'FencedOffError';
  }
}

/**
 * The fencing check a leader's writes begin with: the lease row must still carry the holder's
 * token and not have run out. On PostgreSQL the row is read FOR SHARE, so a takeover (an UPDATE
 * of that row) waits until the fenced write has committed, and every write after it fails here.
 */
export function* checkFence(name: string, holder: string, token: number, now: number): Op<void> {
  const row = yield* get<Leadership>({ sqlite: SELECT, postgres: `${SELECT} FOR SHARE` }, name);
  if (!row || row.holder !== holder || row.token !== token || row.expiresAt <= now) throw new FencedOffError(name, token);
}
