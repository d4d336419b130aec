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
 *
 * On PostgreSQL the two cases take different row locks, on purpose. A renewal changes no key
 * column, so its UPDATE does not wait for the holder's own fenced writes in flight (they hold the
 * row FOR KEY SHARE, see checkFence): a busy leader renews on time. A takeover first locks the
 * row FOR UPDATE, which waits for those writes to commit; every fenced write after it sees the
 * new token and is refused.
 */
export function* claimLeadership(name: string, holder: string, now: number, leaseMs: number): Op<Leadership> {
  const current = yield* get<Leadership>(SELECT, name);
  if (!current) {
    yield* run('INSERT INTO leader_leases (name, holder, token, expires_at) VALUES (?, ?, 1, ?) ON CONFLICT (name) DO NOTHING', name, holder, now + leaseMs);
  } else if (current.holder === holder && current.expiresAt > now) {
    yield* run(
      'UPDATE leader_leases SET expires_at = ? WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?',
      now + leaseMs,
      name,
      holder,
      current.token,
      now,
    );
  } else if (current.expiresAt <= now) {
    const ended = yield* get<Leadership>({ sqlite: SELECT, postgres: `${SELECT} FOR UPDATE` }, name);
    if (ended && ended.expiresAt <= now) {
      yield* run('UPDATE leader_leases SET holder = ?, token = token + 1, expires_at = ? WHERE name = ? AND token = ?', holder, now + leaseMs, name, ended.token);
    }
  }
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
 * token and not have run out. On PostgreSQL the row is read FOR KEY SHARE: a takeover (which
 * locks the row FOR UPDATE first) waits until the fenced write has committed, and every write
 * after it fails here; the holder's own renewal does not wait (see claimLeadership).
 */
export function* checkFence(name: string, holder: string, token: number, now: number): Op<void> {
  const row = yield* get<Leadership>({ sqlite: SELECT, postgres: `${SELECT} FOR KEY SHARE` }, name);
  if (!row || row.holder !== holder || row.token !== token || row.expiresAt <= now) throw new FencedOffError(name, token);
}
