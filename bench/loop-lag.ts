import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { databaseConfig } from '../src/config/database.js';
import { openStore } from '../src/store/open-store.js';
import { get } from '../src/store/op.js';
import { api, pollUntil, submitNdjson, type Api, type BatchView, type Child } from './lib.js';

/**
 * Bench F: does the server keep answering while it cancels and deletes a very large batch?
 * Two batches of `items` items each (NDJSON, a task no worker serves, parallelism 1: nothing
 * runs), then one is cancelled and the other deleted. Meanwhile /healthz is probed every 20 ms
 * and, afterwards, the server's own event-loop delay over the whole action is read from
 * /metrics (prom-client's monitorEventLoopDelay histogram, 10 ms resolution, reset by every
 * scrape: one scrape just before the action, one when the store shows the action finished).
 * Target: event-loop delay max < 100 ms.
 */

export const F_TARGET_MS = 100;
const PROBE_EVERY_MS = 20;

export interface LoopLagContext {
  store: 'sqlite' | 'postgres';
  items: number;
  /** a fresh DATABASE_URL for PostgreSQL (undefined: the bench puts a SQLite file of its own) */
  postgresUrl?: string;
  startServer(name: string, env: Record<string, string>): Promise<{ child: Child; api: Api }>;
  registerNoop(): Promise<void>;
  log(msg: string): void;
  fmt(n: number, digits?: number): string;
}

export interface LoopLagResult {
  action: 'cancel' | 'delete';
  loopMaxMs: number;
  loopP99Ms: number;
  healthzMaxMs: number;
  healthzP99Ms: number;
  probes: number;
  /** the cancel or delete request's own answer time */
  answerMs: number;
  /** from the request until the store shows the last chunk done */
  wholeMs: number;
  /** the same server's event-loop delay max while idle (probed the same way, 2 s): what the machine alone costs */
  idleLoopMaxMs: number;
}

export async function measureLoopLag(ctx: LoopLagContext): Promise<LoopLagResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-bench-f-'));
  const databaseUrl = ctx.postgresUrl ?? path.join(dir, 'fanout.db');
  const server = await ctx.startServer(`f-${ctx.store}`, { DATABASE_URL: databaseUrl });
  // The bench's own view of the store: when the chunked work is done (the API cannot show a
  // deleted batch's rows going).
  const store = await openStore(databaseConfig(databaseUrl, {}));
  try {
    await ctx.registerNoop();
    const batches: BatchView[] = [];
    for (const k of [0, 1]) {
      ctx.log(`F (${ctx.store}): submitting batch ${k + 1} of 2, ${ctx.fmt(ctx.items)} items`);
      const { batch } = await submitNdjson(server.api, { task: 'noop', name: `bench-loop-${k}`, parallelism: 1 }, ctx.items);
      if (batch.status.counts.total !== ctx.items) throw new Error(`batch has ${batch.status.counts.total} items, expected ${ctx.items}`);
      batches.push(batch);
    }
    await sleep(1000);
    const results: LoopLagResult[] = [];
    for (const [action, batch] of [['cancel', batches[0]], ['delete', batches[1]]] as const) {
      // Reference: the idle server, probed alike (on a loaded machine the OS alone delays its loop).
      await scrapeLoopDelay(server.api); // resets the server's histogram
      const idleProbe = probeHealthz(server.api.url);
      await sleep(2000);
      await idleProbe.stop();
      const idle = await scrapeLoopDelay(server.api);
      ctx.log(`F (${ctx.store}): ${action} of ${ctx.fmt(ctx.items)} items, probing /healthz every ${PROBE_EVERY_MS} ms`);
      const probe = probeHealthz(server.api.url);
      const t0 = performance.now();
      if (action === 'cancel') await api(server.api, 'POST', `/v1/batches/${batch.id}/cancel`);
      else await api(server.api, 'DELETE', `/v1/batches/${batch.id}`);
      const answerMs = performance.now() - t0;
      await pollUntil(`the ${action} to finish`, 50, 30 * 60_000, async () => {
        const row = await store.read(get<{ sweep: string | null }>('SELECT sweep FROM batches WHERE id = ?', batch.id));
        const finished = action === 'cancel' ? row?.sweep === null : row === undefined;
        return finished ? true : undefined;
      });
      const wholeMs = performance.now() - t0;
      const loop = await scrapeLoopDelay(server.api);
      const healthz = await probe.stop();
      if (action === 'cancel') {
        const after = await api<BatchView>(server.api, 'GET', `/v1/batches/${batch.id}`);
        if (after.status.phase !== 'Cancelled' || after.status.counts.cancelled !== ctx.items) {
          throw new Error(`cancelled batch ends ${after.status.phase} with counts ${JSON.stringify(after.status.counts)}`);
        }
      }
      results.push({ action, loopMaxMs: loop.maxMs, loopP99Ms: loop.p99Ms, ...healthz, answerMs, wholeMs, idleLoopMaxMs: idle.maxMs });
    }
    return results;
  } finally {
    await store.close();
    await server.child.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The server's event-loop delay since the previous scrape (prom-client resets it on each). */
async function scrapeLoopDelay(a: Api): Promise<{ maxMs: number; p99Ms: number }> {
  const res = await fetch(`${a.url}/metrics`);
  const text = await res.text();
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  const gauge = (name: string) => {
    const m = text.match(new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm'));
    if (!m) throw new Error(`no ${name} in /metrics`);
    return Number(m[1]) * 1000;
  };
  return { maxMs: gauge('nodejs_eventloop_lag_max_seconds'), p99Ms: gauge('nodejs_eventloop_lag_p99_seconds') };
}

/** GET /healthz every PROBE_EVERY_MS (one at a time) until stopped; the latencies seen. */
function probeHealthz(url: string): { stop(): Promise<{ healthzMaxMs: number; healthzP99Ms: number; probes: number }> } {
  const latencies: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      const res = await fetch(`${url}/healthz`);
      await res.text();
      if (!res.ok) throw new Error(`GET /healthz: ${res.status}`);
      const ms = performance.now() - t0;
      latencies.push(ms);
      await sleep(Math.max(0, PROBE_EVERY_MS - ms));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const sorted = [...latencies].sort((x, y) => x - y);
      const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? NaN;
      return { healthzMaxMs: sorted[sorted.length - 1] ?? NaN, healthzP99Ms: p99, probes: sorted.length };
    },
  };
}
