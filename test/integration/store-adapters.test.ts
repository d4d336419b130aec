import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseConfig } from '../../src/config/config.js';
import { all, dialect, get, pluck, run, value, type Op } from '../../src/store/op.js';
import { openStore } from '../../src/store/open-store.js';
import { StoreUnavailableError, type NewItem, type Store } from '../../src/store/store.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * One contract, both adapters of the store port: a SQLite temp file and a fresh database of a
 * real PostgreSQL cluster (test/helpers/postgres.ts), each migrated as the service would. The
 * operations are small ad-hoc ones on a table of their own (`kv`) and the real `items` table
 * (appendItems). Then the PostgreSQL faults: migrations racing, the server stopped, a backend
 * killed mid-transaction, the pool exhausted, a restart.
 */

let cluster: TestPostgres;
const opened: Store[] = [];
const dirs: string[] = [];
let databases = 0;

beforeAll(async () => {
  cluster = await startTestPostgres();
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close().catch(() => {})));
});

afterAll(async () => {
  await cluster?.stop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function postgresConfig(url: string, over: Partial<Extract<DatabaseConfig, { kind: 'postgres' }>> = {}): DatabaseConfig {
  return { kind: 'postgres', url, poolSize: 4, statementTimeoutMs: 10_000, connectTimeoutMs: 2000, ...over };
}

async function freshPostgresUrl(): Promise<string> {
  return cluster.createDatabase(`store_${++databases}`);
}

async function track(store: Promise<Store>): Promise<Store> {
  const s = await store;
  opened.push(s);
  return s;
}

const adapters: { name: string; open(): Promise<Store> }[] = [
  {
    name: 'SQLite',
    async open() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-store-'));
      dirs.push(dir);
      return track(openStore({ kind: 'sqlite', file: path.join(dir, 'fanout.db') }));
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      return track(openStore(postgresConfig(await freshPostgresUrl())));
    },
  },
];

interface KvRow {
  k: string;
  n: number | null;
  note: string | null;
}

function* createKv(): Op<void> {
  yield* run('CREATE TABLE kv (k TEXT PRIMARY KEY, n BIGINT, note TEXT)');
}

function* putKv(k: string, n: number | null, note: string | null = null): Op<number> {
  return yield* run('INSERT INTO kv (k, n, note) VALUES (?, ?, ?)', k, n, note);
}

const kvCount = (): Op<number | undefined> => value<number>('SELECT count(*) FROM kv');

/** A tenant and an `uploading` batch for appendItems (items reference batches). */
function* createBatch(batchId: string): Op<void> {
  yield* run("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'tenant', 1) ON CONFLICT DO NOTHING");
  yield* run(
    `INSERT INTO batches (id, tenant_id, spec, parallelism, state, phase, decisions, status, created_at, updated_at)
     VALUES (?, 't1', '{}', 1, 'uploading', 'Pending', '{}', '{}', ?, ?)`,
    batchId,
    1_796_316_739_774,
    1_796_316_739_774,
  );
}

interface ItemRow {
  idx: number;
  custom_id: string | null;
  input: string;
  status: string;
}

const itemsOf = (batchId: string): Op<ItemRow[]> => all<ItemRow>('SELECT idx, custom_id, input, status FROM items WHERE batch_id = ? ORDER BY idx', batchId);

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe.each(adapters)('store contract: $name', (adapter) => {
  it('runs every statement kind, and says its dialect', async () => {
    const store = await adapter.open();
    await store.write(createKv());
    const inserted = await store.write(
      (function* () {
        let n = 0;
        for (const [k, v] of [['a', 1], ['b', 2], ['c', 3]] as const) n += yield* putKv(k, v);
        return n;
      })(),
    );
    expect(inserted).toBe(3);
    expect(await store.read(all<KvRow>('SELECT k, n, note FROM kv ORDER BY k'))).toEqual([
      { k: 'a', n: 1, note: null },
      { k: 'b', n: 2, note: null },
      { k: 'c', n: 3, note: null },
    ]);
    expect(await store.read(get<KvRow>('SELECT k, n FROM kv WHERE k = ?', 'b'))).toEqual({ k: 'b', n: 2 });
    expect(await store.read(get<KvRow>('SELECT k FROM kv WHERE k = ?', 'zz'))).toBeUndefined();
    expect(await store.read(pluck<string>('SELECT k FROM kv WHERE n >= ? ORDER BY k DESC', 2))).toEqual(['c', 'b']);
    expect(await store.read(value<number>('SELECT n FROM kv WHERE k = ?', 'c'))).toBe(3);
    expect(await store.read(value<number>('SELECT n FROM kv WHERE k = ?', 'zz'))).toBeUndefined();
    // run answers the number of rows changed
    expect(await store.write(run('UPDATE kv SET note = ? WHERE n > ?', 'big', 1))).toBe(2);
    expect(await store.write(run('DELETE FROM kv WHERE k = ?', 'nothing'))).toBe(0);
    expect(await store.read(dialect())).toBe(store.dialect);
    expect(store.dialect).toBe(adapter.name === 'SQLite' ? 'sqlite' : 'postgres');
  });

  it('binds ? placeholders in order, but not a ? inside a string or a quoted name', async () => {
    const store = await adapter.open();
    const row = await store.read(get<Record<string, unknown>>(`SELECT ? AS first, '?' AS literal, 'it''s ?' AS quoted, ? AS "second?" -- a ? in a comment\n`, 'one', 'two'));
    expect(row).toEqual({ first: 'one', literal: '?', quoted: "it's ?", 'second?': 'two' });
    await store.write(createKv());
    await store.write(putKv('q?', 7, 'note with ? inside'));
    expect(await store.read(get<KvRow>("SELECT k, n, note FROM kv WHERE k = ? AND note LIKE '%?%'", 'q?'))).toEqual({ k: 'q?', n: 7, note: 'note with ? inside' });
    // booleans bind as 1/0 on both
    expect(await store.read(value<number>('SELECT ? + 0', true))).toBe(1);
  });

  it('takes the text of its own dialect from a per-dialect SqlText', async () => {
    const store = await adapter.open();
    const text = { sqlite: "SELECT 'sqlite:' || ? AS d", postgres: "SELECT 'postgres:' || ?::text AS d" };
    expect(await store.read(value<string>(text, 'x'))).toBe(`${store.dialect}:x`);
  });

  it('refuses a write in a read, and changes nothing', async () => {
    const store = await adapter.open();
    await store.write(createKv());
    await store.write(putKv('a', 1));
    const err = await rejection(
      store.read(
        (function* () {
          const before = yield* kvCount();
          yield* run('UPDATE kv SET n = n + 1');
          yield* putKv('b', 2);
          return before;
        })(),
      ),
    );
    expect(err).not.toBeInstanceOf(StoreUnavailableError);
    expect(err.message).toMatch(adapter.name === 'SQLite' ? /read-only operation tried to write/ : /read-only transaction/);
    expect(await store.read(all<KvRow>('SELECT k, n FROM kv'))).toEqual([{ k: 'a', n: 1 }]);
  });

  it('a read that is one statement gives its rows, and one that would change rows or lock them is refused', async () => {
    const store = await adapter.open();
    await store.write(createKv());
    await store.write(putKv('a', 1));
    expect(await store.read(all<KvRow>('SELECT k, n FROM kv'))).toEqual([{ k: 'a', n: 1 }]);
    expect(await store.read(get<KvRow>('SELECT k, n FROM kv WHERE k = ?', 'a'))).toEqual({ k: 'a', n: 1 });
    const refusal = adapter.name === 'SQLite' ? /read-only operation tried to write/ : /read-only transaction/;
    const changing = [
      all('UPDATE kv SET n = n + 1 RETURNING k'),
      // PostgreSQL only: a data-changing CTE, and SELECTs that lock rows
      ...(adapter.name === 'SQLite'
        ? []
        : [get('WITH moved AS (UPDATE kv SET n = n + 1 RETURNING k) SELECT k FROM moved'), get('SELECT k FROM kv FOR UPDATE'), get('select k from kv for  no key update')]),
    ];
    for (const op of changing) {
      const err = await rejection(store.read(op));
      expect(err).not.toBeInstanceOf(StoreUnavailableError);
      expect(err.message).toMatch(refusal);
    }
    expect(await store.read(all<KvRow>('SELECT k, n FROM kv'))).toEqual([{ k: 'a', n: 1 }]);
  });

  it('rolls back all of a write that throws, whether the operation or a statement fails', async () => {
    const store = await adapter.open();
    await store.write(createKv());
    await store.write(putKv('kept', 1));
    const thrown = await rejection(
      store.write(
        (function* () {
          yield* putKv('x', 1);
          yield* run('UPDATE kv SET n = 100');
          throw new Error('decided against it');
        })(),
      ),
    );
    expect(thrown.message).toBe('decided against it');
    const failed = await rejection(
      store.write(
        (function* () {
          yield* putKv('y', 1);
          yield* run('DELETE FROM kv WHERE k = ?', 'kept');
          yield* putKv('y', 2); // duplicate key
        })(),
      ),
    );
    expect(failed).not.toBeInstanceOf(StoreUnavailableError);
    expect(failed.message).toMatch(/UNIQUE|duplicate key/);
    expect(await store.read(all<KvRow>('SELECT k, n FROM kv'))).toEqual([{ k: 'kept', n: 1 }]);
    // and the store goes on working
    expect(await store.write(putKv('after', 2))).toBe(1);
  });

  it('returns 64-bit integers, counts and sums as numbers, truth values as 1/0', async () => {
    const store = await adapter.open();
    await store.write(createKv());
    const values = [1_796_316_739_774, Number.MAX_SAFE_INTEGER, -5, 0];
    await store.write(
      (function* () {
        for (const [k, n] of values.entries()) yield* putKv(`k${k}`, n);
      })(),
    );
    const rows = await store.read(all<KvRow>('SELECT k, n FROM kv ORDER BY k'));
    expect(rows.map((r) => r.n)).toEqual(values);
    for (const r of rows) expect(typeof r.n).toBe('number');
    const stats = await store.read(get<{ c: number; s: number; m: number }>("SELECT count(*) AS c, sum(n) AS s, max(n) AS m FROM kv WHERE k <> 'k1'"));
    expect(stats).toEqual({ c: 3, s: 1_796_316_739_774 - 5, m: 1_796_316_739_774 });
    expect(await store.read(pluck<number>('SELECT n FROM kv WHERE k = ?', 'k1'))).toEqual([Number.MAX_SAFE_INTEGER]);
    // a computed truth value is 1/0 on both (SQLite has no boolean)
    expect(await store.read(get('SELECT (1 = 1) AS t, (1 = 0) AS f, EXISTS (SELECT 1 FROM kv) AS e'))).toEqual({ t: 1, f: 0, e: 1 });
  });

  it('appendItems stores tricky text exactly: tab, newline, CR, backslash, \\N, unicode, null customId', async () => {
    const store = await adapter.open();
    await store.write(createBatch('b1'));
    const rows: NewItem[] = [
      { input: '{"a":"tab\there"}', customId: 'tab\tid' },
      { input: 'line1\nline2\n', customId: null },
      { input: 'cr\rlf\r\n', customId: 'cr\r' },
      { input: 'back\\slash \\\\ and \\t not a tab', customId: '\\' },
      { input: '\\N', customId: '\\N' },
      { input: '\\.', customId: 'end\\' },
      { input: '', customId: '' },
      { input: 'ünïcödé 日本語 𝄞 🎉 \u200b\u00a0', customId: 'é' },
      { input: '  leading and trailing  ', customId: null },
    ];
    await store.appendItems('b1', 10, rows);
    await store.appendItems('b1', 10 + rows.length, [{ input: 'second call', customId: null }]);
    const stored = await store.read(itemsOf('b1'));
    expect(stored).toEqual([...rows, { input: 'second call', customId: null }].map((r, k) => ({ idx: 10 + k, custom_id: r.customId, input: r.input, status: 'pending' })));
  });

  it('appendItems takes many rows in one call, and none of a call that fails', async () => {
    const store = await adapter.open();
    await store.write(createBatch('big'));
    const total = 30_000;
    const rows = Array.from({ length: total }, (_, k) => ({ input: JSON.stringify({ k, text: `item ${k}\twith a tab` }), customId: k % 3 === 0 ? null : `c-${k}` }));
    await store.appendItems('big', 0, rows);
    const summary = await store.read(get<{ c: number; s: number }>('SELECT count(*) AS c, sum(idx) AS s FROM items WHERE batch_id = ?', 'big'));
    expect(summary).toEqual({ c: total, s: (total * (total - 1)) / 2 });
    expect(await store.read(get<ItemRow>('SELECT idx, custom_id, input, status FROM items WHERE batch_id = ? AND idx = ?', 'big', 29_998))).toEqual({
      idx: 29_998,
      custom_id: 'c-29998',
      input: rows[29_998].input,
      status: 'pending',
    });
    // an index taken, or a batch that does not exist: the whole call fails, nothing of it stays
    const duplicate = await rejection(store.appendItems('big', total - 1, [{ input: 'taken index', customId: null }, { input: 'free index', customId: null }]));
    expect(duplicate).not.toBeInstanceOf(StoreUnavailableError);
    const missing = await rejection(store.appendItems('no-such-batch', 0, [{ input: '{}', customId: null }]));
    expect(missing).not.toBeInstanceOf(StoreUnavailableError);
    expect(await store.read(value<number>('SELECT count(*) FROM items'))).toBe(total);
    await store.appendItems('big', total, [{ input: 'still works', customId: null }]);
    expect(await store.read(value<number>('SELECT count(*) FROM items'))).toBe(total + 1);
  });

  it('ping answers while the database does', async () => {
    const store = await adapter.open();
    await expect(store.ping()).resolves.toBeUndefined();
  });
});

describe('SQLite: writes run in turns', () => {
  /** A write that takes the database a while: it inserts its key, then counts a few thousand rows made up on the spot. */
  function* slowPut(k: string): Op<void> {
    yield* putKv(k, null);
    yield* value('WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 20000) SELECT count(*) FROM r');
  }

  it('keeps the order writes were asked in, and lets the event loop in before a long queue is done', async () => {
    const store = await adapters[0].open();
    await store.write(createKv());
    const keys = Array.from({ length: 300 }, (_, k) => `k${String(k).padStart(3, '0')}`);
    let done = 0;
    const writes = keys.map((k) => store.write(slowPut(k)).then(() => void done++));
    // Asked for after every write: had the writes run as soon as asked, or all in one turn, this would see all 300 done.
    const doneWhenTheLoopGotIn = await new Promise<number>((resolve) => setImmediate(() => resolve(done)));
    await Promise.all(writes);
    expect(doneWhenTheLoopGotIn).toBeGreaterThan(0);
    expect(doneWhenTheLoopGotIn).toBeLessThan(keys.length);
    expect(await store.read(pluck<string>('SELECT k FROM kv ORDER BY rowid'))).toEqual(keys);
  });

  it('close runs the writes already asked for before it closes the file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-store-'));
    dirs.push(dir);
    const file = path.join(dir, 'fanout.db');
    const store = await openStore({ kind: 'sqlite', file });
    await store.write(createKv());
    const writes = ['a', 'b', 'c'].map((k) => store.write(putKv(k, 1)));
    await store.close();
    await expect(Promise.all(writes)).resolves.toEqual([1, 1, 1]);
    const again = await track(openStore({ kind: 'sqlite', file }));
    expect(await again.read(kvCount())).toBe(3);
  });
});

describe('PostgreSQL: migrations and faults', () => {
  const journal = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../migrations/postgres/meta/_journal.json'), 'utf8')) as { entries: unknown[] };

  it('four replicas opening a new database at once migrate it exactly once', async () => {
    const url = await freshPostgresUrl();
    const stores = await Promise.all(Array.from({ length: 4 }, () => track(openStore(postgresConfig(url)))));
    const applied = await cluster.sql<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations', [], `store_${databases}`);
    expect(journal.entries.length).toBeGreaterThan(0);
    expect(applied[0].n).toBe(journal.entries.length);
    for (const store of stores) expect(await store.read(value<number>('SELECT count(*) FROM items'))).toBe(0);
    // and a later start finds nothing to do
    await track(openStore(postgresConfig(url)));
    expect((await cluster.sql<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations', [], `store_${databases}`))[0].n).toBe(journal.entries.length);
  });

  it('a statement over the statement timeout fails as itself, not as unavailable, and the pool goes on', async () => {
    const store = await track(openStore(postgresConfig(await freshPostgresUrl(), { statementTimeoutMs: 1000, poolSize: 1 })));
    const err = await rejection(store.read(value('SELECT pg_sleep(3)')));
    expect(err).not.toBeInstanceOf(StoreUnavailableError);
    expect(err.message).toMatch(/statement timeout/);
    expect(await store.read(value<number>('SELECT 1'))).toBe(1);
  });

  it('a backend terminated mid-transaction: the write fails, nothing of it is stored, the next write works', async () => {
    const database = `store_${databases + 1}`;
    const store = await track(openStore(postgresConfig(await freshPostgresUrl())));
    await store.write(createKv());
    const write = store.write(
      (function* () {
        yield* putKv('doomed', 1);
        yield* run('UPDATE kv SET n = 2');
        yield* value('SELECT pg_sleep(30)');
        yield* putKv('never', 3);
      })(),
    );
    const failure = rejection(write);
    // wait until the write sleeps inside its transaction, then kill its backend
    for (let tries = 0; ; tries++) {
      const sleeping = await cluster.sql("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep%' AND state = 'active'", [database]);
      if (sleeping.length > 0) break;
      if (tries > 100) throw new Error('the write never reached pg_sleep');
      await sleep(50);
    }
    const started = Date.now();
    expect(await cluster.terminateBackends(database)).toBeGreaterThanOrEqual(1);
    const err = await failure;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(await store.read(kvCount())).toBe(0);
    expect(await store.write(putKv('next', 4))).toBe(1);
    expect(await store.read(all<KvRow>('SELECT k, n FROM kv'))).toEqual([{ k: 'next', n: 4 }]);
  });

  it('the pool exhausted: a further call fails as unavailable within the connect timeout instead of waiting', async () => {
    const store = await track(openStore(postgresConfig(await freshPostgresUrl(), { poolSize: 2, connectTimeoutMs: 1000 })));
    const long = [1, 2].map(() => store.write(value('SELECT pg_sleep(3)')));
    await sleep(200);
    const started = Date.now();
    const err = await rejection(store.read(value('SELECT 1')));
    const waited = Date.now() - started;
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(2000);
    await Promise.all(long);
    expect(await store.read(value<number>('SELECT 1'))).toBe(1);
  });

  it('the server stopped: every call fails fast as unavailable, and works again by itself once it is back', async () => {
    const warnings: unknown[] = [];
    const store = await track(openStore(postgresConfig(await freshPostgresUrl()), { logger: { warn: (obj: unknown) => void warnings.push(obj) } }));
    await store.write(createKv());
    // some idle connections in the pool when the server goes away
    await Promise.all([1, 2, 3].map((n) => store.write(putKv(`k${n}`, n))));
    await cluster.stopServer('fast');
    try {
      const started = Date.now();
      const calls = [store.read(kvCount()), store.write(putKv('lost', 0)), store.appendItems('b', 0, [{ input: '{}', customId: null }]), store.ping()];
      for (const err of await Promise.all(calls.map(rejection))) expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(3000);
      // the idle connections the shutdown closed were reported, not thrown
      expect(warnings.length).toBeGreaterThanOrEqual(1);
    } finally {
      await cluster.startServer();
    }
    expect(await store.read(kvCount())).toBe(3);
    expect(await store.write(putKv('back', 4))).toBe(1);
  });

  it('a call right after its idle connections were killed gets a fresh connection instead of failing', async () => {
    const database = `store_${databases + 1}`;
    const store = await track(openStore(postgresConfig(await freshPostgresUrl())));
    await store.write(createKv());
    for (let round = 1; round <= 5; round++) {
      // every connection of the pool (4) busy once, then idle
      await Promise.all([1, 2, 3, 4].map((n) => store.write(putKv(`r${round}-${n}`, n))));
      expect(await cluster.terminateBackends(database)).toBeGreaterThanOrEqual(1);
      // no pause: the pool may not have heard of the deaths yet (a readiness probe either)
      if (round % 2 === 0) await store.ping();
      expect(await store.read(kvCount())).toBe(round * 4);
    }
  });

  it('after a restart the pooled connections are replaced without a failed call', async () => {
    const store = await track(openStore(postgresConfig(await freshPostgresUrl())));
    await store.write(createKv());
    await Promise.all([1, 2, 3].map((n) => store.write(putKv(`k${n}`, n))));
    await cluster.restart('fast');
    expect(await store.read(kvCount())).toBe(3);
    expect(await store.write(putKv('after', 4))).toBe(1);
    await store.ping();
  });

  it('TLS as the URL asks for it: verify-full against our CA works, against the system CAs is refused', async () => {
    // A CA and a server certificate for 127.0.0.1, then the cluster restarted with TLS on.
    const dataDir = path.join(cluster.dir, 'data');
    const tls = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-pg-tls-'));
    dirs.push(tls);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: tls, stdio: 'pipe' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Fanout test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
    fs.writeFileSync(path.join(tls, 'san.ext'), 'subjectAltName = IP:127.0.0.1\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem');
    const owner = fs.statSync(dataDir);
    for (const file of ['server.pem', 'server.key']) {
      const target = path.join(dataDir, file);
      fs.copyFileSync(path.join(tls, file), target);
      fs.chmodSync(target, 0o600);
      fs.chownSync(target, owner.uid, owner.gid);
    }
    fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), "ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n");
    await cluster.restart('fast');

    const url = await freshPostgresUrl();
    const store = await track(openStore(postgresConfig(`${url}?sslmode=verify-full&sslrootcert=${path.join(tls, 'ca.pem')}`)));
    expect(await store.read(value('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))).toBe(1);
    const refused = await rejection(openStore(postgresConfig(`${url}?sslmode=verify-full`)));
    expect(refused).not.toBeInstanceOf(StoreUnavailableError);
    expect(refused.message).toMatch(/unable to verify the first certificate|self[- ]signed certificate/);
  });
});
