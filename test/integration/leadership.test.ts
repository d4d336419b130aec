import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { LeaderElection } from '../../src/lifecycle/leader-election.js';
import { fencedStore } from '../../src/store/fenced-store.js';
import { checkFence, claimLeadership, FencedOffError, resignLeadership } from '../../src/store/leadership.js';
import { all, get, run, value, type Op } from '../../src/store/op.js';
import { openStore } from '../../src/store/open-store.js';
import type { Store } from '../../src/store/store.js';
import { expectAllSucceededOnce, newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import type { FanoutProcess } from '../helpers/processes.js';

/**
 * Leadership of the dispatcher role on both store adapters: the lease row, its fencing token and
 * the fenced view of the store a leader writes through. A holder whose lease has passed to
 * another (or just run out) can no longer write, whatever it believes; its renewal fails; a
 * resignation hands over at once. Then two real `fanout dispatcher` processes on one SQLite file.
 */

let postgres: TestPostgres;
const opened: Store[] = [];
const dirs: string[] = [];
let databases = 0;

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 60_000);

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close().catch(() => {})));
});

afterAll(async () => {
  await postgres?.stop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

const adapters: { name: string; open(): Promise<Store> }[] = [
  {
    name: 'SQLite',
    async open() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-leadership-'));
      dirs.push(dir);
      const store = await openStore({ kind: 'sqlite', file: path.join(dir, 'fanout.db') });
      opened.push(store);
      return store;
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      const url = await postgres.createDatabase(`leadership_${++databases}`);
      const store = await openStore({ kind: 'postgres', url, poolSize: 4, statementTimeoutMs: 10_000, connectTimeoutMs: 2000 });
      opened.push(store);
      return store;
    },
  },
];

const ROLE = 'dispatcher';
const LEASE_MS = 1000;

/** A write standing for any of a leader's: one row in a table of the test's own. */
function* put(k: string, v: string): Op<void> {
  yield* run('INSERT INTO fence_probe (k, v) VALUES (?, ?)', k, v);
}

function* rows(): Op<Array<{ k: string; v: string }>> {
  return yield* all<{ k: string; v: string }>('SELECT k, v FROM fence_probe ORDER BY k');
}

/** The fenced store of `holder` with `token`, checked at the clock `now()` returns. */
const fencedFor = (store: Store, holder: string, token: number, now: () => number) => fencedStore(store, () => checkFence(ROLE, holder, token, now()));

describe.each(adapters)('leadership on $name', ({ open }) => {
  it("a lease taken over after it ran out: the old holder's fenced writes are refused and change nothing, its renewal fails", async () => {
    const store = await open();
    await store.write(run('CREATE TABLE fence_probe (k TEXT PRIMARY KEY, v TEXT)'));

    // A leads with token 1 until t=2000; B, claiming meanwhile, stands by.
    expect(await store.write(claimLeadership(ROLE, 'A', 1000, LEASE_MS))).toEqual({ name: ROLE, holder: 'A', token: 1, expiresAt: 2000 });
    expect(await store.write(claimLeadership(ROLE, 'B', 1500, LEASE_MS))).toMatchObject({ holder: 'A', token: 1, expiresAt: 2000 });
    let clockOfA = 1600;
    const asA = fencedFor(store, 'A', 1, () => clockOfA);
    await asA.write(put('a1', 'while leading'));

    // Its lease ran out, nobody took it yet: refused already.
    clockOfA = 2000;
    await expect(asA.write(put('a2', 'lease over'))).rejects.toBeInstanceOf(FencedOffError);

    // B takes over: token 2.
    expect(await store.write(claimLeadership(ROLE, 'B', 2000, LEASE_MS))).toEqual({ name: ROLE, holder: 'B', token: 2, expiresAt: 3000 });
    // A's writes are refused even with a clock that says its lease still runs (a paused process).
    clockOfA = 1900;
    await expect(asA.write(put('a3', 'deposed'))).rejects.toBeInstanceOf(FencedOffError);
    clockOfA = 2100;
    await expect(asA.write(put('a4', 'deposed'))).rejects.toThrow(/leadership of dispatcher with token 1 is no longer held/);
    // A's renewal fails: the lease stays B's, unchanged.
    expect(await store.write(claimLeadership(ROLE, 'A', 2100, LEASE_MS))).toEqual({ name: ROLE, holder: 'B', token: 2, expiresAt: 3000 });
    // B writes.
    await fencedFor(store, 'B', 2, () => 2200).write(put('b1', 'new leader'));
    expect(await store.read(rows())).toEqual([
      { k: 'a1', v: 'while leading' },
      { k: 'b1', v: 'new leader' },
    ]);
    // B renews its own lease: same token, later end.
    expect(await store.write(claimLeadership(ROLE, 'B', 2500, LEASE_MS))).toEqual({ name: ROLE, holder: 'B', token: 2, expiresAt: 3500 });
  });

  it('a resignation lets the standby take over at once; the resigned holder is fenced off', async () => {
    const store = await open();
    await store.write(run('CREATE TABLE fence_probe (k TEXT PRIMARY KEY, v TEXT)'));
    expect(await store.write(claimLeadership(ROLE, 'A', 1000, LEASE_MS))).toMatchObject({ holder: 'A', token: 1 });
    // Resigning with a token it no longer holds does nothing.
    await store.write(resignLeadership(ROLE, 'A', 7));
    expect(await store.write(claimLeadership(ROLE, 'B', 1100, LEASE_MS))).toMatchObject({ holder: 'A', token: 1 });
    await store.write(resignLeadership(ROLE, 'A', 1));
    // Long before A's lease would have ended.
    expect(await store.write(claimLeadership(ROLE, 'B', 1200, LEASE_MS))).toEqual({ name: ROLE, holder: 'B', token: 2, expiresAt: 2200 });
    await expect(fencedFor(store, 'A', 1, () => 1300).write(put('a', 'resigned'))).rejects.toBeInstanceOf(FencedOffError);
    expect(await store.read(rows())).toEqual([]);
    // A claiming again after resigning comes back with a new token only once B's lease is over.
    expect(await store.write(claimLeadership(ROLE, 'A', 1300, LEASE_MS))).toMatchObject({ holder: 'B', token: 2 });
    expect(await store.write(claimLeadership(ROLE, 'A', 2200, LEASE_MS))).toMatchObject({ holder: 'A', token: 3 });
  });

  it('LeaderElection: one of two leads; a leader that stops renewing is replaced and its fenced store refused; stop() hands over at once', async () => {
    const store = await open();
    await store.write(run('CREATE TABLE fence_probe (k TEXT PRIMARY KEY, v TEXT)'));
    const logger = pino({ level: 'silent' });
    const led: Array<{ who: string; token: number; fenced: Store }> = [];
    const stood: string[] = [];
    const election = (who: string) =>
      new LeaderElection({
        store,
        name: ROLE,
        leaseMs: LEASE_MS,
        standbyPollMs: 50,
        logger,
        async lead(fenced, token) {
          led.push({ who, token, fenced });
        },
        async stand() {
          stood.push(who);
        },
      });
    const a = election('A');
    const b = election('B');
    const c = election('C');
    try {
      await a.start();
      await b.start();
      expect([a.leading, b.leading]).toEqual([true, false]);
      await led[0].fenced.write(put('a', 'leading'));

      // A hangs (no more renewals, and it has not noticed): B leads once A's lease has run out.
      a.pause();
      await waitUntil('B leading', () => b.leading, 5000, 20);
      expect(a.leading).toBe(true);
      expect(led.map((l) => [l.who, l.token])).toEqual([
        ['A', 1],
        ['B', 2],
      ]);
      await expect(led[0].fenced.write(put('a2', 'deposed'))).rejects.toBeInstanceOf(FencedOffError);
      await led[1].fenced.write(put('b', 'leading'));

      // B stops cleanly: it resigns, and C leads at its very first claim, well within a lease.
      await b.stop();
      expect(stood).toEqual(['B']);
      await c.start();
      expect(c.leading).toBe(true);
      expect(led.at(-1)).toMatchObject({ who: 'C', token: 3 });
      await expect(led[1].fenced.write(put('b2', 'resigned'))).rejects.toBeInstanceOf(FencedOffError);
      expect(await store.read(rows())).toEqual([
        { k: 'a', v: 'leading' },
        { k: 'b', v: 'leading' },
      ]);
    } finally {
      await Promise.all([a.stop(), b.stop(), c.stop()]);
    }
  });
});

describe('leadership on PostgreSQL, concurrently', () => {
  it('a takeover waits for the fenced write in flight to commit: no write of the old holder lands after it', async () => {
    const store = await adapters[1].open();
    await store.write(run('CREATE TABLE fence_probe (k TEXT PRIMARY KEY, v TEXT)'));
    await store.write(claimLeadership(ROLE, 'A', 1000, LEASE_MS));
    // A's write passes its fence while the lease still runs, then takes a while before committing.
    function* slowPut(): Op<void> {
      yield* get('SELECT pg_sleep(0.5)');
      yield* put('a', 'in flight');
    }
    const order: string[] = [];
    const inFlight = fencedFor(store, 'A', 1, () => 1900)
      .write(slowPut())
      .then(() => void order.push('A committed'), (err) => void order.push(`A refused: ${(err as Error).name}`));
    await sleep(150);
    // B claims once the lease has run out; the row is locked FOR KEY SHARE by A's transaction.
    const takeover = store.write(claimLeadership(ROLE, 'B', 2000, LEASE_MS)).then((lease) => {
      order.push('B took over');
      return lease;
    });
    const [, lease] = await Promise.all([inFlight, takeover]);
    expect(lease).toMatchObject({ holder: 'B', token: 2 });
    expect(order).toEqual(['A committed', 'B took over']);
    expect(await store.read(rows())).toEqual([{ k: 'a', v: 'in flight' }]);
    await expect(fencedFor(store, 'A', 1, () => 1900).write(put('a2', 'deposed'))).rejects.toBeInstanceOf(FencedOffError);
  });

  it("the holder's renewal does not wait for its own fenced writes in flight (a busy leader keeps its lease)", async () => {
    const store = await adapters[1].open();
    await store.write(run('CREATE TABLE fence_probe (k TEXT PRIMARY KEY, v TEXT)'));
    await store.write(claimLeadership(ROLE, 'A', 1000, LEASE_MS));
    // Past its fence (an advisory lock shows it), the write waits before it commits.
    function* slowPut(): Op<void> {
      yield* get('SELECT pg_advisory_xact_lock(4242)');
      yield* get('SELECT pg_sleep(1)');
      yield* put('a', 'in flight');
    }
    const order: string[] = [];
    const inFlight = fencedFor(store, 'A', 1, () => 1100)
      .write(slowPut())
      .then(() => void order.push('write committed'));
    const pastFence = () => store.read(value<number>("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted"));
    while ((await pastFence()) !== 1) await sleep(20);
    const renewal = store.write(claimLeadership(ROLE, 'A', 1200, LEASE_MS)).then((lease) => {
      order.push('renewed');
      return lease;
    });
    const [, lease] = await Promise.all([inFlight, renewal]);
    expect(lease).toMatchObject({ holder: 'A', token: 1, expiresAt: 1200 + LEASE_MS });
    expect(order).toEqual(['renewed', 'write committed']);
  });
});

/** The fencing tokens of a process's `leading` log lines. */
function leadingTokens(p: FanoutProcess): number[] {
  return p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"msg":"leading"'))
    .map((l) => JSON.parse(l).fencingToken);
}

describe('two fanout dispatcher processes on one SQLite file', () => {
  let c: Cluster;
  afterEach(async () => c?.stopAll());

  it('the second stands by, and takes over when the first is SIGKILLed', async () => {
    c = newCluster(inject('redisUrl'));
    const first = await c.dispatcher();
    const second = await c.dispatcher();
    expect(leadingTokens(first)).toEqual([1]);
    expect(second.output()).toContain('"msg":"another dispatcher leads; standing by"');
    expect(leadingTokens(second)).toEqual([]);
    await c.api();
    await c.worker(['work=sleep 0.05; cat']);
    const items = Array.from({ length: 60 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'work', items, parallelism: 4 });
    await waitUntil('some items done', async () => (await c.client.getBatch(batch.id)).status.counts.succeeded >= 5, 60_000, 50);

    await first.kill('SIGKILL');
    await second.waitFor(/"msg":"leading"/, 30_000);
    expect(leadingTokens(second)).toEqual([2]);
    expect((await c.client.waitForPhase(batch.id, undefined, 60_000)).status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, batch.id, items);
  }, 120_000);
});
