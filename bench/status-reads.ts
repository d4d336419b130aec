import path from 'node:path';
import { api, cpuSeconds, itemJson, pollUntil, postBatch, startChild, type Api, type BatchView, type Child } from './lib.js';
import type { LoadResult, LoadSpec } from './http-load.js';

/**
 * Bench D: status reads and the write path.
 *
 * Reads: a `fanout up` holding one finished 100-item batch and 49 finished 2-item ones answers
 * `GET /v1/batches/{id}` (the 100-item batch), `GET /v1/batches/{id}/items?limit=100` and
 * `GET /v1/batches?limit=50`, each to CLIENTS keep-alive clients for SECONDS (bench/http-load.ts,
 * a process of its own); an unknown route (404 problem+json) is measured too, for what the
 * middleware alone costs. Then the server stops and the baseline, a bare Hono +
 * @hono/node-server app over the same database (bench/raw-status-server.ts: better-sqlite3, or a
 * pg pool on PostgreSQL) answers the same three reads in the same shape, under the same load.
 *
 * Writes: a fresh `fanout up` takes CLIENTS clients each POSTing 100-item JSON batches for SECONDS
 * (task `noop`, registered as a live worker would but run by none, so the server only stores and
 * dispatches), while one more client asks `/healthz` every 20 ms: how long the write path holds
 * the event loop.
 */

const CLIENTS = 50;
const SECONDS = Number(process.env.BENCH_D_SECONDS || 10);
const READ_RATIO_TARGET = 0.5;
const GET_P99_TARGET_MS = 20;
const POST_P99_TARGET_MS = 200;
const HEALTHZ_TARGET_MS = 100;
const SMALL_BATCHES = 49;

export interface StatusReadsContext {
  store: string;
  /** starts `fanout up` with the store's env plus `env` (a fresh data directory per name) */
  startServer(name: string, env: Record<string, string>, upArgs?: string[]): Promise<{ child: Child; api: Api; dataDir: string }>;
  /** the server env of a measurement on this store: {} (SQLite) or a fresh DATABASE_URL */
  storeEnv(name: string): Promise<Record<string, string>>;
  /** registers task `noop` as a live worker would, without running one */
  registerNoop(): Promise<void>;
  skipBaselines: boolean;
  log(msg: string): void;
  note(msg: string): void;
  /** `serverCpu`: the server's CPU time (user + system) per request */
  row(r: { measurement: string; fanout: string; baseline: string; ratio: string; target: string; met: string; serverCpu?: string }): void;
}

const fmt = (n: number, digits = 0) =>
  !Number.isFinite(n) ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Runs bench/http-load.ts in its own process and returns what it measured. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return (await loadWithCpu(spec)).result;
}

/** {@link runLoad}, with the CPU seconds process `pid` (the server) used meanwhile. */
async function loadWithCpu(spec: LoadSpec, pid?: number): Promise<{ result: LoadResult; cpu: number }> {
  const cpu0 = pid === undefined ? 0 : cpuSeconds(pid);
  const child = startChild(process.execPath, ['--import', 'tsx', path.join('bench', 'http-load.ts'), JSON.stringify(spec)], {}, 'http-load');
  const exited = new Promise<number | null>((resolve) => child.proc.once('exit', (code) => resolve(code)));
  const code = await exited;
  const line = child.output().trim().split('\n').pop() ?? '';
  if (code !== 0) throw new Error(`http-load exited ${code}: ${child.output().slice(-2000)}`);
  return { result: JSON.parse(line) as LoadResult, cpu: pid === undefined ? NaN : cpuSeconds(pid) - cpu0 };
}


const items = (n: number) => Array.from({ length: n }, (_, k) => JSON.parse(itemJson(k)) as unknown);

interface ReadCase {
  name: string;
  path: (batchId: string) => string;
  /** compared with the raw server (the unknown route has no counterpart there) */
  baseline: boolean;
}

const READS: ReadCase[] = [
  { name: 'GET /v1/batches/{id} (finished, 100 items)', path: (id) => `/v1/batches/${id}`, baseline: true },
  { name: 'GET /v1/batches/{id}/items?limit=100', path: (id) => `/v1/batches/${id}/items?limit=100`, baseline: true },
  { name: 'GET /v1/batches?limit=50', path: () => '/v1/batches?limit=50', baseline: true },
  { name: 'GET unknown route (404 problem+json)', path: () => '/v1/no-such-route', baseline: false },
];

const cpuPerRequest = (cpu: number, r: LoadResult) => `${fmt((cpu / r.requests) * 1e6)} µs`;

const describe = (r: LoadResult) =>
  `${fmt(r.rate)} req/s, p50 ${fmt(r.p50, 1)} ms, p99 ${fmt(r.p99, 1)} ms, max ${fmt(r.max)} ms (${fmt(r.requests)} requests${r.errors ? `, ${r.errors} errors` : ''})`;

function checkStatuses(what: string, r: LoadResult, expected: number): void {
  const other = Object.entries(r.statuses).filter(([s]) => Number(s) !== expected);
  if (other.length > 0 || r.errors > 0 || r.requests === 0) {
    throw new Error(`${what}: expected only ${expected}, got ${JSON.stringify(r.statuses)}, ${r.errors} connection errors; ${r.firstUnexpected ?? ''}`);
  }
}

export async function measureStatusReads(ctx: StatusReadsContext): Promise<void> {
  ctx.log(`D (${ctx.store}): status reads, ${CLIENTS} clients × ${SECONDS} s each`);
  const env = await ctx.storeEnv('d_reads');
  const server = await ctx.startServer(`d-reads-${ctx.store}`, env, ['--task', 'noop=true']);
  const fanout = new Map<string, LoadResult>();
  const fanoutCpu = new Map<string, number>();
  let batchId = '';
  try {
    const headers = { authorization: `Bearer ${server.api.key}` };
    const small = [];
    for (let k = 0; k < SMALL_BATCHES; k++) small.push(await postBatch(server.api, { task: 'noop', name: `bench-d-${k}`, labels: { bench: 'd' }, items: items(2), parallelism: 2 }));
    const big = await postBatch(server.api, { task: 'noop', name: 'bench-d-status', labels: { bench: 'd' }, items: items(100), parallelism: 100 });
    batchId = big.id;
    await pollUntil('the bench D batches to succeed', 100, 120_000, async () => {
      const page = await api<{ items: BatchView[] }>(server.api, 'GET', '/v1/batches?limit=50&phase=Succeeded');
      return page.items.length === SMALL_BATCHES + 1 ? true : undefined;
    });
    for (const read of READS) {
      ctx.log(`D (${ctx.store}): ${read.name}`);
      const { result: r, cpu } = await loadWithCpu({ origin: server.api.url, paths: [read.path(batchId)], headers, concurrency: CLIENTS, seconds: SECONDS }, server.child.pid);
      checkStatuses(read.name, r, read.baseline ? 200 : 404);
      fanout.set(read.name, r);
      fanoutCpu.set(read.name, cpu);
    }
  } finally {
    await server.child.stop();
  }

  const raw = new Map<string, LoadResult>();
  const rawCpu = new Map<string, number>();
  if (!ctx.skipBaselines) {
    const target = env.DATABASE_URL ?? path.join(server.dataDir, 'fanout.db');
    const rawServer = startChild(process.execPath, ['--import', 'tsx', path.join('bench', 'raw-status-server.ts'), target], {}, 'raw-status-server');
    try {
      const origin = (await rawServer.waitFor(/listening on (http:\/\/\S+)/, 60_000))[1];
      for (const read of READS.filter((r) => r.baseline)) {
        ctx.log(`D (${ctx.store}): baseline: ${read.name}`);
        const { result: r, cpu } = await loadWithCpu({ origin, paths: [read.path(batchId)], concurrency: CLIENTS, seconds: SECONDS }, rawServer.pid);
        checkStatuses(`baseline ${read.name}`, r, 200);
        raw.set(read.name, r);
        rawCpu.set(read.name, cpu);
      }
    } finally {
      await rawServer.stop();
    }
  }

  const rawName = ctx.store === 'postgres' ? 'raw Hono + pg' : 'raw Hono + better-sqlite3';
  for (const read of READS) {
    const f = fanout.get(read.name)!;
    const b = raw.get(read.name);
    const ratio = b ? f.rate / b.rate : NaN;
    ctx.row({
      measurement: `D. ${read.name}, ${CLIENTS} clients (req/s)`,
      fanout: fmt(f.rate),
      baseline: read.baseline ? `${fmt(b?.rate ?? NaN)} (${rawName})` : '—',
      ratio: read.baseline ? fmt(ratio, 2) : '—',
      target: read.baseline ? `≥ ${fmt(READ_RATIO_TARGET, 2)}` : '—',
      met: !read.baseline ? '—' : Number.isNaN(ratio) ? 'n/a' : ratio >= READ_RATIO_TARGET ? 'yes' : 'NO',
      serverCpu: cpuPerRequest(fanoutCpu.get(read.name)!, f),
    });
    ctx.note(
      `D (${ctx.store}) ${read.name}: Fanout ${describe(f)}, server CPU ${cpuPerRequest(fanoutCpu.get(read.name)!, f)}/request` +
        (b ? `; ${rawName} ${describe(b)}, its CPU ${cpuPerRequest(rawCpu.get(read.name)!, b)}/request` : '') +
        '.',
    );
  }
  const single = fanout.get(READS[0].name)!;
  ctx.row({
    measurement: `D. ${READS[0].name}, ${CLIENTS} clients: p99 latency`,
    fanout: `${fmt(single.p99, 1)} ms`,
    baseline: raw.has(READS[0].name) ? `${fmt(raw.get(READS[0].name)!.p99, 1)} ms` : '—',
    ratio: '—',
    target: `< ${GET_P99_TARGET_MS} ms`,
    met: single.p99 < GET_P99_TARGET_MS ? 'yes' : 'NO',
  });
}

export async function measureWritePath(ctx: StatusReadsContext): Promise<void> {
  ctx.log(`D (${ctx.store}): write path, ${CLIENTS} clients POSTing 100-item batches for ${SECONDS} s, /healthz probed meanwhile`);
  const server = await ctx.startServer(`d-writes-${ctx.store}`, await ctx.storeEnv('d_writes'));
  let posts: LoadResult;
  let health: LoadResult;
  let cpu: number;
  try {
    await ctx.registerNoop();
    const headers = { authorization: `Bearer ${server.api.key}`, 'content-type': 'application/json' };
    const body = JSON.stringify({ task: 'noop', name: 'bench-d-write', labels: { bench: 'd' }, items: items(100), parallelism: 10 });
    let postLoad: { result: LoadResult; cpu: number };
    [postLoad, health] = await Promise.all([
      loadWithCpu({ origin: server.api.url, method: 'POST', paths: ['/v1/batches'], headers, body, concurrency: CLIENTS, seconds: SECONDS }, server.child.pid),
      runLoad({ origin: server.api.url, paths: ['/healthz'], concurrency: 1, seconds: SECONDS, pauseMs: 20 }),
    ]);
    posts = postLoad.result;
    cpu = postLoad.cpu;
    checkStatuses('POST /v1/batches', posts, 202);
    checkStatuses('GET /healthz', health, 200);
    const stored = await api<{ items: BatchView[]; nextCursor: string | null }>(server.api, 'GET', '/v1/batches?limit=1');
    if (stored.items.length === 0) throw new Error('no batch stored');
  } finally {
    await server.child.stop();
  }
  ctx.row({
    measurement: `D. write path: POST /v1/batches, 100 items, ${CLIENTS} clients: p99 latency`,
    fanout: `${fmt(posts.p99)} ms (${fmt(posts.rate)} req/s)`,
    baseline: '—',
    ratio: '—',
    target: `< ${POST_P99_TARGET_MS} ms`,
    met: posts.p99 < POST_P99_TARGET_MS ? 'yes' : 'NO',
    serverCpu: cpuPerRequest(cpu, posts),
  });
  ctx.row({
    measurement: 'D. write path: GET /healthz meanwhile, max latency',
    fanout: `${fmt(health.max, 1)} ms (p99 ${fmt(health.p99, 1)} ms)`,
    baseline: '—',
    ratio: '—',
    target: `< ${HEALTHZ_TARGET_MS} ms`,
    met: health.max < HEALTHZ_TARGET_MS ? 'yes' : 'NO',
  });
  ctx.note(`D (${ctx.store}) write path: POST ${describe(posts)}, server CPU ${cpuPerRequest(cpu, posts)}/request (storing and dispatching); /healthz every 20 ms meanwhile: ${describe(health)}.`);
}
