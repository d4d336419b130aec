import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { databaseConfig } from '../src/config/database.js';
import { openStore } from '../src/store/open-store.js';
import { createTenantForKey } from '../src/store/tenants.js';
import { api, itemJson, pollUntil, startScript, submitNdjson, type Api, type BatchView, type Child } from './lib.js';

/**
 * G. Fair share: tenant A submits N items of a 2 ms task; a few seconds later tenant B submits
 * 20. The figure is how long B's batch takes from its POST to Succeeded while A still has a
 * backlog, against the same 1M + 20 jobs in one raw BullMQ queue (first come, first served)
 * with the same worker processes and concurrency, where B waits for everything of A queued
 * before it. Tenant B is made the way tests make one (`createTenantForKey` on the server's store).
 */

export interface FairShareBench {
  store: string;
  items: number;
  concurrency: number;
  redisUrl: string;
  redis: Redis;
  prefix: string;
  rawPrefix: string;
  skipBaselines: boolean;
  /** starts `fanout up` with these env additions; returns its API (key of tenant A) and data dir */
  server(env: Record<string, string>): Promise<{ child: Child; api: Api; dataDir: string; env: Record<string, string> }>;
  log(msg: string): void;
  fmt(n: number, digits?: number): string;
}

export interface FairShareResult {
  /** seconds from B's POST to its batch Succeeded, on Fanout */
  fanoutSeconds: number;
  /** A's items not yet finished when B was done (its backlog) */
  backlogWhenDone: number;
  /** the same on one raw BullMQ queue */
  fifoSeconds: number;
  notes: string[];
}

const B_ITEMS = 20;
/** how long after A's batch is accepted (and running) B submits */
const B_DELAY_MS = 3000;
const TASK_MS = 2;

export async function measureFairShare(g: FairShareBench): Promise<FairShareResult> {
  const notes: string[] = [];
  const workerEnv = (mode: string) => ({
    REDIS_URL: g.redisUrl,
    FANOUT_REDIS_PREFIX: g.prefix,
    BENCH_MODE: mode,
    BENCH_TASK_MS: String(TASK_MS),
    BENCH_CONCURRENCY: String(g.concurrency),
    BENCH_PREFIX: g.rawPrefix,
    BENCH_QUEUE: 'nap',
  });

  await g.redis.flushall();
  const server = await g.server({});
  const workers: Child[] = [];
  let fanoutSeconds = NaN;
  let backlogWhenDone = NaN;
  try {
    workers.push(...(await Promise.all([startScript('bench/nap-worker.ts', workerEnv('fanout')), startScript('bench/nap-worker.ts', workerEnv('fanout'))])));
    const keyB = `bench-b-${Date.now()}`;
    const store = await openStore(databaseConfig(server.env.DATABASE_URL ?? path.join(server.dataDir, 'fanout.db'), {}), { migrate: false });
    try {
      await store.write(createTenantForKey(keyB, 'bench-b'));
    } finally {
      await store.close();
    }
    const tenantB: Api = { url: server.api.url, key: keyB };
    g.log(`G (${g.store}): tenant A submits ${g.fmt(g.items)} items of a ${TASK_MS} ms task`);
    const { batch: big } = await submitNdjson(server.api, { task: 'nap', name: 'bench-fair-a', parallelism: 1_000_000 }, g.items);
    await pollUntil("tenant A's first results", 100, 120_000, async () => ((await api<BatchView>(server.api, 'GET', `/v1/batches/${big.id}`)).status.counts.succeeded > 0 ? true : undefined));
    await sleep(B_DELAY_MS);
    const items = Array.from({ length: B_ITEMS }, (_, k) => JSON.parse(itemJson(k)) as unknown);
    const t0 = performance.now();
    const res = await fetch(`${tenantB.url}/v1/batches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenantB.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'nap', name: 'bench-fair-b', items, parallelism: B_ITEMS }),
    });
    const small = (await res.json()) as BatchView;
    if (res.status !== 202) throw new Error(`tenant B's POST: ${res.status} ${JSON.stringify(small)}`);
    const doneAt = await pollUntil("tenant B's batch", 20, 600_000, async () => {
      const b = await api<BatchView>(tenantB, 'GET', `/v1/batches/${small.id}`);
      if (b.status.phase === 'Failed' || b.status.phase === 'Cancelled') throw new Error(`B's batch ended ${b.status.phase}`);
      return b.status.phase === 'Succeeded' ? performance.now() : undefined;
    });
    fanoutSeconds = (doneAt - t0) / 1000;
    const a = (await api<BatchView>(server.api, 'GET', `/v1/batches/${big.id}`)).status.counts;
    backlogWhenDone = a.pending + a.running;
    notes.push(
      `G (${g.store}): tenant B's ${B_ITEMS} items finished ${g.fmt(fanoutSeconds, 2)} s after its POST; tenant A then had ${g.fmt(a.succeeded)} of ${g.fmt(a.total)} done and ${g.fmt(backlogWhenDone)} still to run.`,
    );
    await api(server.api, 'POST', `/v1/batches/${big.id}/cancel`);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await server.child.stop();
  }

  const fifoSeconds = g.skipBaselines ? NaN : await fifoBaseline(g, workerEnv('bullmq'), notes);
  return { fanoutSeconds, backlogWhenDone, fifoSeconds, notes };
}

/** The same load on one raw BullMQ queue: B's jobs join the end of the line. */
async function fifoBaseline(g: FairShareBench, env: Record<string, string>, notes: string[]): Promise<number> {
  g.log(`G: baseline: raw BullMQ, ${g.fmt(g.items)} + ${B_ITEMS} jobs in one queue`);
  await g.redis.flushall();
  const connection = new Redis(g.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('nap', { connection, prefix: g.rawPrefix });
  const workers: Child[] = [];
  try {
    // All of A queued before any worker starts, as Fanout had all of A stored before it ran any:
    // B then arrives B_DELAY_MS after A started running in both.
    for (let k = 0; k < g.items; k += 1000) {
      const chunk = [];
      for (let j = k; j < Math.min(g.items, k + 1000); j++) chunk.push({ name: 'a', data: JSON.parse(itemJson(j)) as unknown, opts: { removeOnComplete: true } });
      await queue.addBulk(chunk);
    }
    workers.push(...(await Promise.all([startScript('bench/nap-worker.ts', env), startScript('bench/nap-worker.ts', env)])));
    await sleep(B_DELAY_MS);
    const backlog = await queue.getWaitingCount();
    const t0 = performance.now();
    const bJobs = await queue.addBulk(Array.from({ length: B_ITEMS }, (_, k) => ({ name: 'b', data: JSON.parse(itemJson(k)) as unknown, opts: { removeOnComplete: false } })));
    const doneAt = await pollUntil("B's raw jobs", 20, 1_800_000, async () => {
      const states = await Promise.all(bJobs.map((j) => queue.getJobState(j.id!)));
      return states.every((s) => s === 'completed') ? performance.now() : undefined;
    });
    const seconds = (doneAt - t0) / 1000;
    notes.push(`G baseline: in one raw BullMQ queue B's ${B_ITEMS} jobs finished ${g.fmt(seconds, 2)} s after they were added, behind the ${g.fmt(backlog)} of A's ${g.fmt(g.items)} still waiting then.`);
    return seconds;
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    connection.disconnect();
  }
}
