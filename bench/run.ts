import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { newBatchId } from '../src/store/batch-create.js';
import {
  api,
  cpuSeconds,
  ITEM_BYTES,
  itemJson,
  killAllChildren,
  peakRss,
  processTreeCpuSeconds,
  pollUntil,
  REPO,
  startFanout,
  startRedis,
  startScript,
  submitNdjson,
  usedMemory,
  type Api,
  type BatchView,
  type Child,
} from './lib.js';
import { commandItems, fanoutCommandBatch, xargsBaseline } from './command-bench.js';
import { postgresCopyBaseline, ROWS_PER_COPY } from './postgres-baseline.js';
import { F_TARGET_MS, measureLoopLag } from './loop-lag.js';
import { measureFairShare } from './fair-share.js';
import { compileServer, largeIngestItems, RSS_SPREAD_TARGET, RSS_TARGET_MB, rssSpread } from './ingest-memory.js';
import { startTestPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { measureStatusReads, measureWritePath, type StatusReadsContext } from './status-reads.js';

/**
 * `npm run bench`: Fanout against baselines measured in the same run on the same machine.
 *
 *   A. NDJSON ingest over HTTP vs, on SQLite, raw better-sqlite3 inserts into a table shaped like
 *      `items`; on PostgreSQL, raw `COPY … FROM STDIN` (pg + pg-copy-streams) into one; and the
 *      server's peak RSS over an ingest of 1,000,000 and of 5,000,000 items (bench/ingest-memory.ts)
 *   B. end-to-end no-op items with two worker processes vs raw BullMQ with two worker processes
 *      (the raw BullMQ baseline is measured once and serves every store)
 *   C. Redis memory per queued item vs per waiting raw BullMQ job (Redis only; server on SQLite)
 *   D. status reads (three GETs, 50 keep-alive clients) vs a bare Hono server over the same database,
 *      and the write path (50 clients POSTing 100-item batches, /healthz latency meanwhile):
 *      bench/status-reads.ts
 *   E. command tasks (`fanout up --task rev=rev`) at parallelism 4 and 16 vs `xargs -P` running
 *      `sh -c 'echo ITEM | rev'` per item (SQLite)
 *   F. the server's event-loop delay and /healthz latency while it cancels one batch of 5,000,000
 *      items and deletes another (bench/loop-lag.ts); target: delay max < 100 ms
 *   G. fair share (bench/fair-share.ts): tenant A's 1,000,000 items of a
 *      2 ms task, then tenant B's 20: seconds until B is done vs one raw BullMQ queue (FIFO)
 *
 * A, B, D, F and G run once per store of BENCH_STORES (default `sqlite,postgres`). For PostgreSQL the
 * bench starts its own cluster (test/helpers/postgres.ts, with fsync and synchronous_commit on,
 * as in production) and gives every measurement a fresh database; the server gets it as
 * DATABASE_URL. A and B also report the server's CPU time per item.
 *
 * Env: BENCH_SCALE (default 1) scales item counts; BENCH_CONCURRENCY (default 64) per worker
 * process (A-C); BENCH_ONLY=A,B,C,D,E,F,G picks measurements; BENCH_A_LARGE_ITEMS sets A's second ingest (default 5 × A's); BENCH_STORES=sqlite,postgres picks the
 * stores of A, B, D, F and G; BENCH_POSTGRES_FSYNC=off runs the cluster without fsync (a diagnosis of what
 * commits cost, not a fair comparison); BENCH_POSTGRES_STATEMENTS=1 logs the costliest statements
 * of each PostgreSQL measurement (pg_stat_statements); BENCH_SERVER_LOG=1 logs each server's
 * output (warnings) when it stops; BENCH_SERVER_NODE_ARGS adds node flags to the
 * server (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"); BENCH_SKIP_BASELINES=1 measures Fanout only
 * (for profiling; ratios then read n/a). Everything runs on 127.0.0.1 and is
 * stopped at the end; bench/results/latest.md gets the table (bench/results/no-baselines.md with
 * BENCH_SKIP_BASELINES=1, so that a profiling run does not replace the last real one).
 */

const SCALE = Number(process.env.BENCH_SCALE || 1);
if (!(SCALE > 0 && SCALE <= 10)) throw new Error(`BENCH_SCALE must be in (0, 10], got ${process.env.BENCH_SCALE}`);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY || 64);
const ONLY = new Set((process.env.BENCH_ONLY || 'A,B,C,D,E,F,G').split(',').map((s) => s.trim().toUpperCase()));
type StoreKind = 'sqlite' | 'postgres';
const STORE_KINDS: readonly StoreKind[] = ['sqlite', 'postgres'];
const STORES = (process.env.BENCH_STORES || STORE_KINDS.join(','))
  .split(',')
  .map((s) => s.trim().toLowerCase())
  .filter(Boolean) as StoreKind[];
for (const s of STORES) if (!STORE_KINDS.includes(s)) throw new Error(`BENCH_STORES: unknown store '${s}' (sqlite, postgres)`);
if (STORES.length === 0) throw new Error('BENCH_STORES names no store');
const SKIP_BASELINES = process.env.BENCH_SKIP_BASELINES === '1';
/** BENCH_POSTGRES_FSYNC=off: the cluster without fsync (to see what commits to disk cost; not for the table) */
const POSTGRES_DURABLE = process.env.BENCH_POSTGRES_FSYNC !== 'off';
/** BENCH_POSTGRES_STATEMENTS=1: pg_stat_statements on; each PostgreSQL measurement logs its costliest statements */
const POSTGRES_STATEMENTS = process.env.BENCH_POSTGRES_STATEMENTS === '1';
/** BENCH_SERVER_LOG=1: each server's own output (LOG_LEVEL warn) is logged when it stops */
const SERVER_LOG = process.env.BENCH_SERVER_LOG === '1';
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS || '').split(/\s+/).filter(Boolean);
const N_A = Math.round(1_000_000 * SCALE);
const N_A_LARGE = largeIngestItems(N_A);
const N_B = Math.round(200_000 * SCALE);
const N_C = Math.round(100_000 * SCALE);
const N_E = Math.round(10_000 * SCALE);
const N_F = Math.round(5_000_000 * SCALE);
const E_PARALLELISM = [4, 16];
const E_TARGET = 0.6;
const PREFIX = 'fanout';
const RAW_PREFIX = 'rawbench';
const SQLITE_TX_ROWS = 5_000;
const BULK_CHUNK = 1_000;
/** the whole run stops by itself after this long, whatever happens */
const WATCHDOG_MS = Math.max(6, 12 * SCALE * STORES.length) * 60_000;

interface Row {
  measurement: string;
  /** sqlite, postgres, or — when the figure depends on no store */
  store: string;
  fanout: string;
  baseline: string;
  ratio: string;
  target: string;
  met: string;
  /** the server's CPU time (user + system) per item, µs; — where not measured */
  serverCpu?: string;
}
const rows: Row[] = [];
const notes: string[] = [];

const fmt = (n: number, digits = 0) =>
  !Number.isFinite(n) ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
/** A ratio to 2 decimals, or 3 where 2 would round a miss up to its target (0.4992 reads 0.499, not 0.50). */
const ratioText = (ratio: number, target: number): string =>
  ratio < target && Math.round(ratio * 100) / 100 >= target ? fmt(ratio, 3) : fmt(ratio, 2);
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-bench-'));
const apiKey = `bench-${randomBytes(16).toString('hex')}`;
let redisChild: Child | undefined;
let redisUrl = '';
let redis: Redis | undefined;
let postgres: TestPostgres | undefined;
let postgresVersion = '';
let databases = 0;

function cleanupSync(): void {
  killAllChildren();
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.once('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping`);
    cleanupSync();
    process.exit(130);
  });
}
const watchdog = setTimeout(() => {
  log(`watchdog: still running after ${WATCHDOG_MS / 60_000} min; stopping`);
  cleanupSync();
  process.exit(3);
}, WATCHDOG_MS);
watchdog.unref();

async function fanoutServer(name: string, env: Record<string, string> = {}, upArgs?: string[]): Promise<{ child: Child; api: Api }> {
  const dataDir = path.join(tmp, name);
  fs.mkdirSync(dataDir, { recursive: true });
  const { child, url } = await startFanout(
    { REDIS_URL: redisUrl, FANOUT_API_KEY: apiKey, FANOUT_DATA_DIR: dataDir, FANOUT_REDIS_PREFIX: PREFIX, LOG_LEVEL: 'warn', ...env },
    SERVER_NODE_ARGS,
    upArgs,
  );
  if (!url.startsWith('http://127.0.0.1:')) throw new Error(`server listens on ${url}, not 127.0.0.1`);
  if (SERVER_LOG) child.proc.once('exit', () => log(`server ${name} output:\n${child.output().slice(-20_000)}`));
  return { child, api: { url, key: apiKey } };
}

/**
 * The server env of one measurement on `store`: nothing for SQLite (the server's data directory
 * holds a fresh fanout.db), DATABASE_URL of a fresh database of the bench cluster for PostgreSQL.
 */
async function storeEnv(store: StoreKind, name: string): Promise<Record<string, string>> {
  if (store === 'sqlite') return {};
  return { DATABASE_URL: await freshDatabase(name) };
}

interface DatabaseActivity {
  /** transactions committed in the database */
  commits: number;
  /** WAL flushes to disk of the whole cluster (each one an fsync when fsync is on) */
  walSyncs: number;
}

/**
 * The counters of the database of DATABASE_URL in `env` (none for SQLite). PostgreSQL's
 * statistics reach pg_stat_database when a backend goes idle or exits: read them after the
 * server stopped for a complete figure.
 */
async function databaseActivity(env: Record<string, string>): Promise<DatabaseActivity | undefined> {
  if (!postgres || !env.DATABASE_URL) return undefined;
  const database = new URL(env.DATABASE_URL).pathname.slice(1);
  const [row] = await postgres.sql<DatabaseActivity>(
    `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = $1)::float8 AS commits, wal_sync::float8 AS "walSyncs" FROM pg_stat_wal`,
    [database],
  );
  return row;
}

/** With BENCH_POSTGRES_STATEMENTS=1: logs the statements of the database of `env` that took longest in all. */
async function logCostliestStatements(what: string, env: Record<string, string>): Promise<void> {
  if (!POSTGRES_STATEMENTS || !postgres || !env.DATABASE_URL) return;
  const database = new URL(env.DATABASE_URL).pathname.slice(1);
  const top = await postgres.sql<{ calls: number; total_ms: number; rows: number; query: string }>(
    `SELECT s.calls::float8 AS calls, s.total_exec_time AS total_ms, s.rows::float8 AS rows,
            left(regexp_replace(s.query, '\\s+', ' ', 'g'), 220) AS query
       FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
      WHERE d.datname = $1 ORDER BY s.total_exec_time DESC LIMIT 12`,
    [database],
  );
  log(`${what}: costliest statements (pg_stat_statements; total ms · calls · rows · statement)`);
  for (const t of top) log(`  ${fmt(t.total_ms)} ms · ${fmt(t.calls)} · ${fmt(t.rows)} · ${t.query}`);
}

function describeActivity(before: DatabaseActivity | undefined, after: DatabaseActivity | undefined, items: number): string {
  if (!before || !after) return '';
  const commits = after.commits - before.commits;
  const syncs = after.walSyncs - before.walSyncs;
  return `; ${fmt(commits)} transactions committed (${fmt(commits / items, 2)} per item), ${fmt(syncs)} WAL flushes (${fmt(syncs / items, 2)} per item), upload included`;
}

async function freshDatabase(name: string): Promise<string> {
  if (!postgres) throw new Error('no PostgreSQL cluster started');
  return postgres.createDatabase(`bench_${++databases}_${name}`);
}

/** CPU seconds of the PostgreSQL cluster (postmaster and every backend) so far; 0 without one. */
const clusterCpu = (): number => {
  const pid = postgres?.postmasterPid();
  return pid ? processTreeCpuSeconds(pid) : 0;
};

const cpuPerItem = (seconds: number, items: number): string => `${fmt((seconds / items) * 1e6, 1)} µs`;

/** Registers task `noop` as a live worker would, without running one. */
async function registerNoop(): Promise<void> {
  await redis!.hset(`${PREFIX}:tasks`, 'noop', JSON.stringify({ kind: 'function', lastSeen: Date.now() }));
}

async function getBatch(a: Api, id: string): Promise<BatchView> {
  return api<BatchView>(a, 'GET', `/v1/batches/${id}`);
}

function itemJobs(from: number, to: number) {
  const out = [];
  for (let k = from; k < to; k++) out.push({ name: 'noop', data: JSON.parse(itemJson(k)) as unknown, opts: { removeOnComplete: true } });
  return out;
}

// ---------------------------------------------------------------------------------------------
// A. NDJSON ingest

/** the ingest target, as a fraction of the raw baseline's rate */
const A_TARGET: Record<StoreKind, number> = { sqlite: 0.4, postgres: 0.5 };

async function measureIngest(store: StoreKind): Promise<void> {
  log(`A (${store}): NDJSON ingest of ${fmt(N_A)} items over HTTP`);
  await redis!.flushall();
  const server = await fanoutServer(`a-${store}`, await storeEnv(store, 'a'));
  let fanoutRate = NaN;
  let rss = NaN;
  let serverCpu = NaN;
  try {
    await registerNoop();
    const cpu0 = { server: cpuSeconds(server.child.pid), cluster: clusterCpu() };
    // parallelism 1 and no noop worker running: the batch cannot start during the measurement
    const { batch, ms } = await submitNdjson(server.api, { task: 'noop', name: 'bench-ingest', parallelism: 1 }, N_A);
    serverCpu = cpuSeconds(server.child.pid) - cpu0.server;
    const dbCpu = clusterCpu() - cpu0.cluster;
    if (batch.status.counts.total !== N_A) throw new Error(`ingested ${batch.status.counts.total} items, expected ${N_A}`);
    fanoutRate = N_A / (ms / 1000);
    rss = peakRss(server.child.pid);
    notes.push(
      `A (${store}): ${fmt(N_A)} items (${fmt((N_A * (ITEM_BYTES + 1)) / 1e6, 1)} MB) ingested in ${fmt(ms / 1000, 2)} s; ` +
        `server CPU ${fmt(serverCpu, 1)} s` +
        (store === 'postgres' ? `, PostgreSQL cluster CPU ${fmt(dbCpu, 1)} s (${cpuPerItem(dbCpu, N_A)}/item).` : ' (SQLite runs inside the server).'),
    );
  } finally {
    await server.child.stop();
  }

  let rawRate = NaN;
  let baseline = '';
  if (store === 'sqlite') {
    log('A (sqlite): baseline: raw better-sqlite3 inserts');
    rawRate = SKIP_BASELINES ? NaN : sqliteBaseline(N_A);
    baseline = `${fmt(rawRate)} (raw better-sqlite3 inserts)`;
  } else {
    log('A (postgres): baseline: raw COPY through pg-copy-streams');
    if (!SKIP_BASELINES) {
      const url = await freshDatabase('a_raw');
      const cpu0 = clusterCpu();
      const raw = await postgresCopyBaseline(url, N_A);
      rawRate = raw.rate;
      const dbCpu = clusterCpu() - cpu0;
      notes.push(
        `A baseline (postgres): ${fmt(N_A)} rows COPYed in ${fmt(raw.seconds, 2)} s (BEGIN/COPY/COMMIT only, ${fmt(ROWS_PER_COPY)} rows per COPY); ` +
          `PostgreSQL cluster CPU ${fmt(dbCpu, 1)} s (${cpuPerItem(dbCpu, N_A)}/item).`,
      );
    }
    baseline = `${fmt(rawRate)} (raw COPY FROM STDIN, ${fmt(ROWS_PER_COPY)} rows per transaction)`;
  }
  const ratio = fanoutRate / rawRate;
  const target = A_TARGET[store];
  rows.push({
    measurement: `A. NDJSON ingest, ${fmt(N_A)} × ${ITEM_BYTES} B items (items/s)`,
    store,
    fanout: fmt(fanoutRate),
    baseline,
    ratio: ratioText(ratio, target),
    target: `≥ ${fmt(target, 2)}`,
    met: Number.isNaN(ratio) ? 'n/a' : ratio >= target ? 'yes' : 'NO',
    serverCpu: cpuPerItem(serverCpu, N_A),
  });
  const largeRss = await ingestPeakRss(store, N_A_LARGE);
  const mb = (bytes: number) => `${fmt(bytes / 2 ** 20)} MB`;
  for (const [n, peak] of [[N_A, rss], [N_A_LARGE, largeRss]] as const) {
    rows.push({
      measurement: `A. server peak RSS during an ingest of ${fmt(n)} items (VmHWM)`,
      store,
      fanout: mb(peak),
      baseline: '—',
      ratio: '—',
      target: `< ${RSS_TARGET_MB} MB`,
      met: peak < RSS_TARGET_MB * 2 ** 20 ? 'yes' : 'NO',
    });
  }
  const spread = rssSpread(rss, largeRss);
  rows.push({
    measurement: `A. peak RSS, ${fmt(N_A_LARGE)} vs ${fmt(N_A)} items`,
    store,
    fanout: `${fmt(spread * 100, 1)}% apart`,
    baseline: '—',
    ratio: '—',
    target: `within ${fmt(RSS_SPREAD_TARGET * 100)}%`,
    met: spread <= RSS_SPREAD_TARGET ? 'yes' : 'NO',
  });
}

/** The server's peak RSS over an NDJSON ingest of `n` items, in a fresh server (and database). */
async function ingestPeakRss(store: StoreKind, n: number): Promise<number> {
  log(`A (${store}): peak RSS over an ingest of ${fmt(n)} items`);
  await redis!.flushall();
  const server = await fanoutServer(`a-large-${store}`, await storeEnv(store, 'a_large'));
  try {
    await registerNoop();
    const { batch, ms } = await submitNdjson(server.api, { task: 'noop', name: 'bench-ingest-large', parallelism: 1 }, n);
    if (batch.status.counts.total !== n) throw new Error(`ingested ${batch.status.counts.total} items, expected ${n}`);
    const peak = peakRss(server.child.pid);
    notes.push(`A (${store}): ${fmt(n)} items ingested in ${fmt(ms / 1000, 2)} s (${fmt(n / (ms / 1000))} items/s), server peak RSS ${fmt(peak / 2 ** 20)} MB.`);
    return peak;
  } finally {
    await server.child.stop();
  }
}

/**
 * Raw better-sqlite3: the same rows with the statement the API uses, into a table created from
 * the `items` DDL of a freshly migrated store (same columns, primary key, indexes and foreign
 * key), WAL, synchronous NORMAL, 5,000 rows per transaction. Times the transactions only.
 */
function sqliteBaseline(n: number): number {
  const dir = path.join(tmp, 'sqlite');
  fs.mkdirSync(dir, { recursive: true });
  const schemaStore = openSqliteStore(path.join(dir, 'schema.db'));
  const ddl = schemaStore.sqlite
    .prepare("SELECT type, sql FROM sqlite_master WHERE tbl_name = 'items' AND sql IS NOT NULL ORDER BY type = 'index'")
    .all() as { type: string; sql: string }[];
  void schemaStore.close();
  if (!ddl.some((d) => d.type === 'table')) throw new Error('no items table in the migrated schema');

  const db = new Database(path.join(dir, 'raw.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE `batches` (`id` text PRIMARY KEY NOT NULL)');
    for (const d of ddl) db.exec(d.sql);
    db.pragma('foreign_keys = ON');
    const batchId = newBatchId();
    db.prepare('INSERT INTO batches (id) VALUES (?)').run(batchId);
    const insert = db.prepare("INSERT INTO items (batch_id, idx, custom_id, input, status) VALUES (?, ?, ?, ?, 'pending')");
    const tx = db.transaction((first: number, inputs: string[], ids: string[]) => {
      for (let k = 0; k < inputs.length; k++) insert.run(batchId, first + k, ids[k], inputs[k]);
    });
    let ms = 0;
    for (let first = 0; first < n; first += SQLITE_TX_ROWS) {
      const last = Math.min(n, first + SQLITE_TX_ROWS);
      const inputs: string[] = [];
      const ids: string[] = [];
      for (let k = first; k < last; k++) {
        inputs.push(itemJson(k));
        ids.push(`item-${String(k).padStart(7, '0')}`);
      }
      const t0 = performance.now();
      tx(first, inputs, ids);
      ms += performance.now() - t0;
    }
    const count = db.prepare('SELECT count(*) FROM items').pluck().get() as number;
    if (count !== n) throw new Error(`raw insert stored ${count} rows, expected ${n}`);
    notes.push(`A baseline (sqlite): ${fmt(n)} rows inserted in ${fmt(ms / 1000, 2)} s (transactions only).`);
    return n / (ms / 1000);
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// B. end-to-end

const B_TIMEOUT_MS = Math.max(120_000, 600_000 * SCALE);
/** raw BullMQ end-to-end: measured once per run (it involves no store), shared by every store's row */
let rawBullmq: Promise<{ rate: number; addRate: number }> | undefined;

async function measureEndToEnd(store: StoreKind): Promise<void> {
  log(`B (${store}): end-to-end, ${fmt(N_B)} no-op items, 2 worker processes × concurrency ${CONCURRENCY}`);
  await redis!.flushall();
  const timeoutMs = B_TIMEOUT_MS;
  const serverEnv = await storeEnv(store, 'b');
  const server = await fanoutServer(`b-${store}`, serverEnv);
  const workers: Child[] = [];
  let fanoutRate = NaN;
  let serverCpu = NaN;
  let activity0: DatabaseActivity | undefined;
  let note = '';
  try {
    const env = { REDIS_URL: redisUrl, FANOUT_REDIS_PREFIX: PREFIX, BENCH_CONCURRENCY: String(CONCURRENCY) };
    workers.push(...(await Promise.all([startScript('bench/noop-worker.ts', env), startScript('bench/noop-worker.ts', env)])));
    activity0 = await databaseActivity(serverEnv);
    const { batch, acceptedAt, ms: ingestMs } = await submitNdjson(server.api, { task: 'noop', name: 'bench-e2e', parallelism: N_B }, N_B);
    const pids = { server: server.child.pid, workers: workers.map((w) => w.pid), redis: redisChild!.pid };
    const cpu0 = cpuOf(pids);
    const cluster0 = clusterCpu();
    let last: BatchView | undefined;
    let lastLogged = performance.now();
    const done = await pollUntil('the batch to succeed', 200, timeoutMs, async () => {
      last = await getBatch(server.api, batch.id);
      if (performance.now() - lastLogged > 10_000) {
        lastLogged = performance.now();
        log(`B (${store}): ${JSON.stringify(last.status.counts)}`);
      }
      const phase = last.status.phase;
      if (phase === 'Failed' || phase === 'Cancelled') throw new Error(`batch ended ${phase}: ${JSON.stringify(last.status)}`);
      return phase === 'Succeeded' ? performance.now() : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; last counts ${JSON.stringify(last?.status.counts)}`);
    });
    const cpu = cpuDelta(cpu0, cpuOf(pids));
    const dbCpu = clusterCpu() - cluster0;
    const s = (done - acceptedAt) / 1000;
    fanoutRate = N_B / s;
    serverCpu = cpu.server;
    note =
      `B (${store}): Fanout ran ${fmt(N_B)} items in ${fmt(s, 2)} s after the 202 (the upload itself took ${fmt(ingestMs / 1000, 2)} s, not counted); ` +
        `CPU used meanwhile: server ${fmt(cpu.server, 1)} s, workers ${cpu.workers.map((w) => fmt(w, 1)).join(' + ')} s, redis ${fmt(cpu.redis, 1)} s` +
        (store === 'postgres' ? `, PostgreSQL cluster ${fmt(dbCpu, 1)} s (${cpuPerItem(dbCpu, N_B)}/item)` : '');
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await server.child.stop();
  }
  notes.push(`${note}${describeActivity(activity0, await databaseActivity(serverEnv), N_B)}.`);
  await logCostliestStatements(`B (${store})`, serverEnv);

  const first = rawBullmq === undefined;
  if (first) {
    log('B: baseline: raw BullMQ (once for every store)');
    rawBullmq = (async () => {
      await redis!.flushall();
      return SKIP_BASELINES ? { rate: NaN, addRate: NaN } : rawBullmqEndToEnd(N_B, timeoutMs);
    })();
  }
  const raw = await rawBullmq!;
  const ratio = fanoutRate / raw.rate;
  rows.push({
    measurement: `B. end-to-end, ${fmt(N_B)} no-op items, 2 workers × ${CONCURRENCY} (items/s)`,
    store,
    fanout: fmt(fanoutRate),
    baseline: `${fmt(raw.rate)} (raw BullMQ jobs/s${first ? '' : ', measured once above'})`,
    ratio: ratioText(ratio, 2),
    target: '≥ 2.00',
    met: Number.isNaN(ratio) ? 'n/a' : ratio >= 2 ? 'yes' : 'NO',
    serverCpu: cpuPerItem(serverCpu, N_B),
  });
  if (first) {
    rows.push({
      measurement: `B. raw BullMQ addBulk rate, chunks of ${fmt(BULK_CHUNK)} (jobs/s)`,
      store: '—',
      fanout: '—',
      baseline: fmt(raw.addRate),
      ratio: '—',
      target: '—',
      met: '—',
    });
  }
}

interface CpuPids {
  server: number;
  workers: number[];
  redis: number;
}
const cpuOf = (p: CpuPids) => ({ server: cpuSeconds(p.server), workers: p.workers.map(cpuSeconds), redis: cpuSeconds(p.redis) });
function cpuDelta(a: ReturnType<typeof cpuOf>, b: ReturnType<typeof cpuOf>) {
  return { server: b.server - a.server, workers: b.workers.map((w, k) => w - a.workers[k]), redis: b.redis - a.redis };
}

async function rawBullmqEndToEnd(n: number, timeoutMs: number): Promise<{ rate: number; addRate: number }> {
  const queueName = 'noop';
  const env = { REDIS_URL: redisUrl, BENCH_PREFIX: RAW_PREFIX, BENCH_QUEUE: queueName, BENCH_CONCURRENCY: String(CONCURRENCY) };
  const workers: Child[] = [];
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection, prefix: RAW_PREFIX });
  try {
    workers.push(...(await Promise.all([startScript('bench/bullmq-worker.ts', env), startScript('bench/bullmq-worker.ts', env)])));
    const chunks: ReturnType<typeof itemJobs>[] = [];
    for (let k = 0; k < n; k += BULK_CHUNK) chunks.push(itemJobs(k, Math.min(n, k + BULK_CHUNK)));
    const pids = { server: process.pid, workers: workers.map((w) => w.pid), redis: redisChild!.pid };
    const cpu0 = cpuOf(pids);
    const t0 = performance.now();
    for (const chunk of chunks) await queue.addBulk(chunk);
    const tAdded = performance.now();
    const done = await pollUntil('raw BullMQ jobs to complete', 50, timeoutMs, async () => {
      const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
      return Object.values(c).reduce((a, b) => a + b, 0) === 0 ? performance.now() : undefined;
    });
    const failed = await queue.getFailedCount();
    if (failed > 0) throw new Error(`${failed} raw BullMQ jobs failed`);
    const cpu = cpuDelta(cpu0, cpuOf(pids));
    const s = (done - t0) / 1000;
    notes.push(
      `B baseline: raw BullMQ added ${fmt(n)} jobs in ${fmt((tAdded - t0) / 1000, 2)} s and completed them ${fmt(s, 2)} s after the first add; ` +
        `CPU used meanwhile: producer (bench) ${fmt(cpu.server, 1)} s, workers ${cpu.workers.map((w) => fmt(w, 1)).join(' + ')} s, redis ${fmt(cpu.redis, 1)} s.`,
    );
    return { rate: n / s, addRate: n / ((tAdded - t0) / 1000) };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await queue.close();
    connection.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// C. Redis memory per queued item

async function measureMemory(): Promise<void> {
  log(`C: Redis memory per queued item, ${fmt(N_C)} items, no workers`);
  await redis!.flushall();
  const server = await fanoutServer('c', { FANOUT_RELEASE_WINDOW: String(Math.max(200_000, N_C * 2)) });
  let fanoutPerItem = NaN;
  try {
    await registerNoop();
    await sleep(1000);
    const before = await usedMemory(redis!);
    const { batch } = await submitNdjson(server.api, { task: 'noop', name: 'bench-memory', parallelism: Math.max(100_000, N_C) }, N_C);
    await pollUntil('every item to be released', 200, 120_000, async () => {
      const b = await getBatch(server.api, batch.id);
      return b.status.counts.running === N_C ? true : undefined;
    });
    // the release commits before its addBulk: wait until the queued leases stop changing
    const work = new Queue('fanout-work.noop', { connection: redis!, prefix: PREFIX });
    let previous = -1;
    const leases = await pollUntil('the released leases to be in Redis', 250, 60_000, async () => {
      const c = await work.getJobCounts('waiting', 'prioritized', 'delayed');
      const n = Object.values(c).reduce((a, b) => a + b, 0);
      const stable = n > 0 && n === previous;
      previous = n;
      return stable ? n : undefined;
    }).finally(() => work.close());
    await sleep(500);
    const after = await usedMemory(redis!);
    fanoutPerItem = (after - before) / N_C - ITEM_BYTES;
    notes.push(`C: Fanout queued ${fmt(N_C)} items in ${fmt(leases)} lease jobs; used_memory +${fmt((after - before) / 2 ** 20, 1)} MiB.`);
  } finally {
    await server.child.stop();
  }

  log('C: baseline: raw BullMQ waiting jobs');
  await redis!.flushall();
  const rawPerJob = SKIP_BASELINES ? NaN : await rawBullmqMemory(N_C);
  await redis!.flushall();
  rows.push({
    measurement: `C. Redis memory per queued item beyond its ${ITEM_BYTES} B payload (${fmt(N_C)} items)`,
    store: '—',
    fanout: `${fmt(fanoutPerItem)} B`,
    baseline: `${fmt(rawPerJob)} B (raw BullMQ waiting job)`,
    ratio: fmt(fanoutPerItem / rawPerJob, 2),
    target: '< 200 B',
    met: fanoutPerItem < 200 ? 'yes' : 'NO',
  });
}

/** used_memory delta per waiting raw BullMQ job with the same payload, beyond the payload. */
async function rawBullmqMemory(n: number): Promise<number> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('noop', { connection, prefix: RAW_PREFIX });
  try {
    await queue.waitUntilReady();
    await sleep(500);
    const before = await usedMemory(redis!);
    for (let k = 0; k < n; k += BULK_CHUNK) await queue.addBulk(itemJobs(k, Math.min(n, k + BULK_CHUNK)));
    const waiting = await queue.getWaitingCount();
    if (waiting !== n) throw new Error(`raw BullMQ has ${waiting} waiting jobs, expected ${n}`);
    await sleep(500);
    const after = await usedMemory(redis!);
    notes.push(`C baseline: ${fmt(n)} waiting raw BullMQ jobs; used_memory +${fmt((after - before) / 2 ** 20, 1)} MiB.`);
    return (after - before) / n - ITEM_BYTES;
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// D. status reads and the write path (bench/status-reads.ts)

async function measureStatusAndWrites(store: StoreKind): Promise<void> {
  await redis!.flushall();
  const ctx: StatusReadsContext = {
    store,
    startServer: async (name, env, upArgs) => ({ ...(await fanoutServer(name, env, upArgs)), dataDir: path.join(tmp, name) }),
    storeEnv: (name) => storeEnv(store, name),
    registerNoop,
    skipBaselines: SKIP_BASELINES,
    log,
    note: (n) => notes.push(n),
    row: (r) => rows.push({ ...r, store }),
  };
  await measureStatusReads(ctx);
  await redis!.flushall();
  await measureWritePath(ctx);
}

// ---------------------------------------------------------------------------------------------
// E. command tasks

/**
 * `fanout up --task rev=rev --concurrency P` (its in-process worker runs P items at once, so the
 * batch's parallelism P is what caps them), against `xargs -P P` on the same items.
 */
async function measureCommandTasks(): Promise<void> {
  const items = commandItems(N_E);
  const timeoutMs = Math.max(60_000, 600_000 * SCALE);
  for (const p of E_PARALLELISM) {
    log(`E: ${fmt(N_E)} items of command task rev, parallelism ${p}`);
    await redis!.flushall();
    const server = await fanoutServer(`e${p}`, {}, ['--task', 'rev=rev', '--concurrency', String(p)]);
    let fanout = { rate: NaN, seconds: NaN };
    try {
      const cpu0 = cpuSeconds(server.child.pid);
      fanout = await fanoutCommandBatch(server.api, 'rev', items, p, timeoutMs);
      notes.push(`E${p}: Fanout ran ${fmt(N_E)} items in ${fmt(fanout.seconds, 2)} s after the 202; server+worker CPU ${fmt(cpuSeconds(server.child.pid) - cpu0, 1)} s (children not counted).`);
    } finally {
      await server.child.stop();
    }
    log(`E: baseline: xargs -P ${p}`);
    const raw = SKIP_BASELINES ? { rate: NaN, seconds: NaN } : await xargsBaseline(items, p);
    if (!SKIP_BASELINES) notes.push(`E${p} baseline: xargs -P ${p} ran ${fmt(N_E)} items in ${fmt(raw.seconds, 2)} s.`);
    const ratio = fanout.rate / raw.rate;
    rows.push({
      measurement: `E. command task rev, ${fmt(N_E)} items, parallelism ${p} (items/s)`,
      store: 'sqlite',
      fanout: fmt(fanout.rate),
      baseline: `${fmt(raw.rate)} (xargs -P ${p} sh -c 'echo ITEM \\| rev')`,
      ratio: ratioText(ratio, E_TARGET),
      target: `≥ ${fmt(E_TARGET, 2)}`,
      met: Number.isNaN(ratio) ? 'n/a' : ratio >= E_TARGET ? 'yes' : 'NO',
    });
  }
}

// ---------------------------------------------------------------------------------------------
// F. event-loop delay during a large cancel and delete

async function measureLoopLagOn(store: StoreKind): Promise<void> {
  await redis!.flushall();
  const results = await measureLoopLag({
    store,
    items: N_F,
    postgresUrl: store === 'postgres' ? await freshDatabase('f') : undefined,
    startServer: (name, env) => fanoutServer(name, env),
    registerNoop,
    log,
    fmt,
  });
  for (const r of results) {
    rows.push({
      measurement: `F. server event-loop delay max during ${r.action} of ${fmt(N_F)} items (ms)`,
      store,
      fanout: fmt(r.loopMaxMs, 1),
      baseline: `${fmt(r.idleLoopMaxMs, 1)} (the same server idle, 2 s)`,
      ratio: '—',
      target: `< ${F_TARGET_MS}`,
      met: r.loopMaxMs < F_TARGET_MS ? 'yes' : 'NO',
    });
    notes.push(
      `F (${store}) ${r.action}: answered in ${fmt(r.answerMs)} ms, all ${fmt(N_F)} items done in ${fmt(r.wholeMs / 1000, 2)} s; ` +
        `event-loop delay p99 ${fmt(r.loopP99Ms, 1)} ms, max ${fmt(r.loopMaxMs, 1)} ms; ` +
        `/healthz probed ${fmt(r.probes)} times: p99 ${fmt(r.healthzP99Ms, 1)} ms, max ${fmt(r.healthzMaxMs, 1)} ms.`,
    );
  }
}

// G. Fair share between tenants (bench/fair-share.ts)

async function measureG(store: StoreKind): Promise<void> {
  const n = Math.round(1_000_000 * SCALE);
  const server = async (extra: Record<string, string>) => {
    const env = { ...(await storeEnv(store, 'g')), ...extra };
    return { ...(await fanoutServer(`g-${store}`, env)), dataDir: path.join(tmp, `g-${store}`), env };
  };
  const g = await measureFairShare({ store, items: n, concurrency: CONCURRENCY, redisUrl, redis: redis!, prefix: PREFIX, rawPrefix: RAW_PREFIX, skipBaselines: SKIP_BASELINES, server, log, fmt });
  notes.push(...g.notes);
  const ratio = g.fifoSeconds / g.fanoutSeconds;
  const met = g.fanoutSeconds < 5 && g.backlogWhenDone > 0 && ratio >= 10;
  rows.push({
    measurement: `G. tenant B's 20 items behind tenant A's ${fmt(n)} (2 ms task, 2 workers × ${CONCURRENCY}): seconds until B is done`,
    store,
    fanout: fmt(g.fanoutSeconds, 2),
    baseline: `${fmt(g.fifoSeconds, 2)} (one raw BullMQ queue, FIFO)`,
    ratio: fmt(ratio, 1),
    target: '< 5 s, A still busy, ≥ 10× sooner',
    met: Number.isNaN(ratio) ? 'n/a' : met ? 'yes' : 'NO',
  });
}

// ---------------------------------------------------------------------------------------------

function table(): string {
  const head = ['measurement', 'store', 'fanout', 'baseline', 'ratio', 'target', 'met?', 'server CPU/item (D: /request)'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${[r.measurement, r.store, r.fanout, r.baseline, r.ratio, r.target, r.met, r.serverCpu ?? '—'].join(' | ')} |`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const started = Date.now();
  // the machine may be shared: its load says how far absolute figures can be trusted
  const loadAtStart = os.loadavg()[0];
  const r = await startRedis(tmp);
  redisChild = r.child;
  redisUrl = r.url;
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  const failures: string[] = [];
  compileServer(log);
  const steps: [string, string, () => Promise<void>][] = [
    ...STORES.map((store): [string, string, () => Promise<void>] => ['A', store, () => measureIngest(store)]),
    ...STORES.map((store): [string, string, () => Promise<void>] => ['B', store, () => measureEndToEnd(store)]),
    ['C', '—', measureMemory],
    ...STORES.map((store): [string, string, () => Promise<void>] => ['D', store, () => measureStatusAndWrites(store)]),
    ['E', 'sqlite', measureCommandTasks],
    ...STORES.map((store): [string, string, () => Promise<void>] => ['F', store, () => measureLoopLagOn(store)]),
    ...STORES.map((store): [string, string, () => Promise<void>] => ['G', store, () => measureG(store)]),
  ];
  try {
    if (STORES.includes('postgres') && ['A', 'B', 'D', 'F', 'G'].some((m) => ONLY.has(m))) {
      log(`starting a PostgreSQL cluster (fsync ${POSTGRES_DURABLE ? 'on' : 'off'})`);
      postgres = await startTestPostgres({ durable: POSTGRES_DURABLE });
      postgresVersion = (await postgres.sql<{ server_version: string }>('SHOW server_version'))[0].server_version;
      if (POSTGRES_STATEMENTS) {
        await postgres.sql(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
        await postgres.restart('fast');
        await postgres.sql('CREATE EXTENSION pg_stat_statements');
      }
    }
    for (const [name, store, step] of steps) {
      if (!ONLY.has(name)) continue;
      try {
        await step();
      } catch (err) {
        log(`${name} (${store}) failed: ${(err as Error).stack ?? err}`);
        failures.push(`${name} (${store}): ${(err as Error).message.split('\n')[0]}`);
        rows.push({ measurement: `${name}. (failed)`, store, fanout: 'error', baseline: '—', ratio: '—', target: '—', met: 'NO' });
      }
    }
  } finally {
    redis.disconnect();
    await redisChild.stop();
    await postgres?.stop();
  }
  const cpu = os.cpus();
  const md = [
    `# Fanout benchmark`,
    '',
    `${new Date().toISOString()} · ${cpu.length} × ${cpu[0]?.model ?? 'cpu'} · Node ${process.version} · BENCH_SCALE=${SCALE} · ` +
      `worker concurrency ${CONCURRENCY} · stores ${STORES.join(', ')}` +
      (postgres ? ` (PostgreSQL ${postgresVersion}, fsync ${POSTGRES_DURABLE ? 'on' : 'OFF'})` : '') +
      ` · baselines measured in the same run · ${fmt((Date.now() - started) / 1000)} s · ` +
      `load average ${fmt(loadAtStart, 1)} at the start, ${fmt(os.loadavg()[0], 1)} at the end`,
    '',
    table(),
    '',
    ...notes.map((n) => `- ${n}`),
    ...failures.map((f) => `- FAILED ${f}`),
    '',
  ].join('\n');
  process.stdout.write(`${md}\n`);
  const outDir = path.join(REPO, 'bench/results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, SKIP_BASELINES ? 'no-baselines.md' : 'latest.md'), md);
  if (failures.length > 0) process.exitCode = 1;
}

await main();
process.exit();
