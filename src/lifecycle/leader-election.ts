import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import { fencedStore } from '../store/fenced-store.js';
import { checkFence, claimLeadership, resignLeadership } from '../store/leadership.js';
import type { Store } from '../store/store.js';

/**
 * Runs a role (the dispatcher) in one process of many: each claims the lease row in the store;
 * the holder renews it every third of the lease and runs the role with a fenced view of the
 * store; the others stand by and claim it again every half second, so one takes over within about a
 * lease after the holder dies. A holder that cannot renew before its lease ends stops the role
 * (its fenced writes are refused from then on anyway). See docs/architecture.md#leader-election.
 */
export interface LeaderElectionOptions {
  store: Store;
  /** the role's name, the lease row's key */
  name: string;
  leaseMs: number;
  logger: Logger;
  /** starts the role with a store whose writes are fenced by this leadership */
  lead(fenced: Store, token: number): Promise<void>;
  /** stops the role (leadership lost, or the process stops) */
  stand(): Promise<void>;
  /** how often a standby claims (default 500 ms, at most the lease) */
  standbyPollMs?: number;
}

export class LeaderElection {
  readonly holder = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private token: number | null = null;
  /** when this holder's lease ends, as of its last successful claim */
  private leaseEnds = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private turn: Promise<void> = Promise.resolve();

  constructor(private readonly o: LeaderElectionOptions) {}

  get leading(): boolean {
    return this.token !== null;
  }

  /** Claims once now (so a lone process leads at once), then keeps claiming. */
  async start(): Promise<void> {
    await this.step();
  }

  /** Claims no more (the first step of stopping): the lease is kept until stop() resigns it. */
  pause(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  async stop(): Promise<void> {
    this.pause();
    await this.turn;
    if (this.token !== null) {
      const token = this.token;
      await this.depose('stopping');
      // Resigned: a standby takes over at its next claim instead of when the lease runs out.
      await this.o.store.write(resignLeadership(this.o.name, this.holder, token)).catch(() => {});
    }
  }

  private step(): Promise<void> {
    this.turn = this.turn.then(() => this.claim());
    return this.turn;
  }

  private async claim(): Promise<void> {
    if (this.stopped) return;
    const now = Date.now();
    try {
      const lease = await this.o.store.write(claimLeadership(this.o.name, this.holder, now, this.o.leaseMs));
      if (lease.holder === this.holder) {
        this.leaseEnds = now + this.o.leaseMs;
        if (this.token !== lease.token) await this.elect(lease.token);
      } else if (this.token !== null) {
        await this.depose(`${lease.holder} holds it now`);
      }
    } catch (err) {
      if (this.token !== null && Date.now() >= this.leaseEnds) await this.depose(`could not renew: ${(err as Error).message}`);
      else this.o.logger.warn({ role: this.o.name, err: (err as Error).message }, 'leadership claim failed; trying again');
    }
    if (this.stopped) return;
    const every = this.token !== null ? Math.max(100, Math.floor(this.o.leaseMs / 3)) : Math.min(this.o.standbyPollMs ?? 500, this.o.leaseMs);
    this.timer = setTimeout(() => void this.step(), every);
    this.timer.unref();
  }

  private async elect(token: number): Promise<void> {
    if (this.token !== null) await this.depose('a newer lease of its own');
    this.token = token;
    // Not `token`: the logger redacts fields of that name (secrets), and this one is no secret.
    this.o.logger.info({ role: this.o.name, holder: this.holder, fencingToken: token }, 'leading');
    const fenced = fencedStore(this.o.store, () => checkFence(this.o.name, this.holder, token, Date.now()));
    try {
      await this.o.lead(fenced, token);
    } catch (err) {
      this.o.logger.error({ role: this.o.name, err: (err as Error).message }, 'could not start leading; resigning');
      await this.depose('start failed');
      await this.o.store.write(resignLeadership(this.o.name, this.holder, token)).catch(() => {});
    }
  }

  private async depose(why: string): Promise<void> {
    if (this.token === null) return;
    this.o.logger.warn({ role: this.o.name, holder: this.holder, fencingToken: this.token, why }, 'no longer leading');
    this.token = null;
    await this.o.stand();
  }
}
