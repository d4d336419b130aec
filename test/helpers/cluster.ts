import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { ApiClient } from './api-client.js';
import { spawnFanout, type FanoutProcess } from './processes.js';
import { newDatabaseUrl } from './test-store.js';

const STARTUP_MS = 60_000;

/**
 * A Fanout installation made of real child processes for end-to-end and fault tests: one data
 * directory and the run's store in it (test/helpers/test-store.ts), one Redis key prefix, one API key, and any number of `fanout up` and
 * `fanout worker` processes sharing them. Every process started here is SIGKILLed by `stopAll()`.
 */
export interface Cluster {
  redisUrl: string;
  dataDir: string;
  prefix: string;
  apiKey: string;
  /** a scratch directory for task side effects (markers, timestamps) */
  scratch: string;
  /** environment every fanout process of this cluster gets */
  env: Record<string, string>;
  /** the client of the most recently started `fanout up` */
  client: ApiClient;
  up(args?: string[], env?: Record<string, string>): Promise<FanoutProcess & { url: string }>;
  /** `fanout api` alone (HTTP only); its client becomes `client` */
  api(env?: Record<string, string>): Promise<FanoutProcess & { url: string }>;
  /** `fanout dispatcher` alone */
  dispatcher(env?: Record<string, string>): Promise<FanoutProcess>;
  /** starts `fanout worker --task …` and waits until it listens on its queues */
  worker(tasks: string[], env?: Record<string, string>): Promise<FanoutProcess>;
  stopAll(): Promise<void>;
}

export function newCluster(redisUrl: string): Cluster {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-e2e-'));
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-scratch-'));
  const prefix = `e${randomBytes(5).toString('hex')}`;
  const apiKey = `key-${randomBytes(8).toString('hex')}`;
  const env = {
    REDIS_URL: redisUrl,
    FANOUT_API_KEY: apiKey,
    FANOUT_DATA_DIR: dataDir,
    FANOUT_REDIS_PREFIX: prefix,
    FANOUT_LEASE_SECONDS: '2',
    FANOUT_LEADER_LEASE_SECONDS: '2',
    FANOUT_RESYNC_SECONDS: '1',
    SCRATCH: scratch,
  };
  // Made before the first process that opens the store starts (a PostgreSQL database is created).
  let storeReady: Promise<void> | undefined;
  const withStore = () =>
    (storeReady ??= (async () => {
      // A test that set its own DATABASE_URL in `c.env` keeps it.
      const e = env as Record<string, string>;
      e.DATABASE_URL ??= await newDatabaseUrl(dataDir);
    })());
  const procs: FanoutProcess[] = [];
  const cluster: Cluster = {
    redisUrl,
    dataDir,
    prefix,
    apiKey,
    scratch,
    env,
    client: undefined as unknown as ApiClient,
    async up(args = [], extra = {}) {
      await withStore();
      const p = spawnFanout(['up', '--port', '0', ...args], { ...env, ...extra });
      procs.push(p);
      // start-up compiles the TypeScript sources: slow on a loaded machine
      const m = await p.waitFor(/listening on (http:\/\/\S+)/, STARTUP_MS);
      cluster.client = new ApiClient(m[1], apiKey);
      return Object.assign(p, { url: m[1] });
    },
    async api(extra = {}) {
      await withStore();
      const p = spawnFanout(['api', '--port', '0'], { ...env, ...extra });
      procs.push(p);
      const m = await p.waitFor(/listening on (http:\/\/\S+)/, STARTUP_MS);
      cluster.client = new ApiClient(m[1], apiKey);
      return Object.assign(p, { url: m[1] });
    },
    async dispatcher(extra = {}) {
      await withStore();
      const p = spawnFanout(['dispatcher'], { ...env, LOG_LEVEL: 'info', ...extra });
      procs.push(p);
      await p.waitFor(/"msg":"fanout started"/, STARTUP_MS);
      return p;
    },
    async worker(tasks, extra = {}) {
      const args = ['worker', ...tasks.flatMap((t) => ['--task', t])];
      const p = spawnFanout(args, { ...env, LOG_LEVEL: 'info', ...extra });
      procs.push(p);
      await p.waitFor(/"msg":"worker started"/, STARTUP_MS);
      return p;
    },
    async stopAll() {
      await Promise.all(procs.map((p) => p.kill('SIGKILL')));
      killScratchGroups(scratch);
    },
  };
  return cluster;
}

/** Tasks that record `$SCRATCH/pid.*` files have their process groups killed on cleanup. */
function killScratchGroups(dir: string): void {
  for (const f of fs.readdirSync(dir)) {
    if (!f.startsWith('pid.')) continue;
    const pid = Number(fs.readFileSync(path.join(dir, f), 'utf8').trim());
    try {
      if (pid > 0) process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Polls `fn` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitUntil<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

/** Every item of a batch with its attempts (pages through GET …/items). */
export async function allItems(client: ApiClient, batchId: string): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor ? `?limit=1000&cursor=${cursor}` : '?limit=1000';
    const r = await client.json('GET', `/v1/batches/${batchId}/items${q}`);
    if (r.status !== 200) throw new Error(`items: ${r.status} ${JSON.stringify(r.body)}`);
    out.push(...r.body.items);
    cursor = r.body.nextCursor;
  } while (cursor);
  return out;
}

/**
 * The exactly-once check of the fault tests: every index appears once in the results, every
 * item succeeded with the expected result, and no item has more than one succeeded attempt.
 * Returns the items (with attempts) for further checks.
 */
export async function expectAllSucceededOnce(client: ApiClient, batchId: string, expected: unknown[]): Promise<any[]> {
  const results = await client.results(batchId);
  expect(results.map((r) => r.index)).toEqual(expected.map((_, i) => i));
  const notOk = results.filter((r) => r.status !== 'succeeded');
  expect(notOk, 'items that did not succeed').toEqual([]);
  expect(results.map((r) => r.result)).toEqual(expected);
  const items = await allItems(client, batchId);
  expect(items.length).toBe(expected.length);
  for (const item of items) {
    const wins = item.attempts.filter((a: any) => a.outcome === 'succeeded');
    expect(wins.length, `succeeded attempts of item ${item.index}: ${JSON.stringify(item.attempts)}`).toBe(1);
  }
  return items;
}

/** Largest number of [start, end) intervals open at once (an end at t closes before a start at t). */
export function maxOverlap(intervals: Array<[number, number]>): number {
  const events = intervals.flatMap(([s, e]) => [
    [s, 1],
    [e, -1],
  ]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of events) {
    open += d;
    max = Math.max(max, open);
  }
  return max;
}

/** Files in the scratch directory whose names start with `prefix`. */
export function scratchFiles(cluster: Cluster, prefix: string): string[] {
  return fs.readdirSync(cluster.scratch).filter((f) => f.startsWith(prefix));
}

/**
 * Expands an index set in interval notation ("1,3-5,7") to its indexes. Kubernetes writes two
 * consecutive indexes as "0,1" and only 3+ as a range; the checks compare sets, not spellings.
 */
export function indexesOf(set: string): number[] {
  if (set === '') return [];
  return set.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, k) => a + k);
  });
}
