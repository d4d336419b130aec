import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { expectAllSucceededOnce, newCluster, type Cluster } from '../helpers/cluster.js';
import { spawnFanout } from '../helpers/processes.js';

/**
 * Limits shared by all workers (src/runtimes/queue/task-limiter.ts): a task's maxConcurrent and
 * maxPerSecond, a batch's concurrency key, and the adaptive rate a 429 with Retry-After sets.
 * Each runs two worker processes against a real HTTP server on 127.0.0.1 that records what it
 * saw, so a limit kept per process, not across them, would show.
 */

interface Downstream {
  url: string;
  /** arrival times (ms) of every request */
  arrivals: number[];
  /** most requests in flight at once, overall and per `customer` field of the item */
  maxInFlight: number;
  maxInFlightByCustomer: Map<string, number>;
  /** answers that were 429 */
  refused: number;
  close(): Promise<void>;
}

/**
 * A downstream service: answers each POST after `delayMs` with the item back; with
 * `allowPerSecond`, a request beyond that many in the current second is answered 429 with
 * Retry-After: 1, as a rate-limited API does.
 */
async function startDownstream(opts: { delayMs: number; allowPerSecond?: number }): Promise<Downstream> {
  let inFlight = 0;
  const byCustomer = new Map<string, number>();
  let second = 0;
  let inSecond = 0;
  const d: Downstream = { url: '', arrivals: [], maxInFlight: 0, maxInFlightByCustomer: new Map(), refused: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now();
      d.arrivals.push(now);
      if (opts.allowPerSecond !== undefined) {
        const s = Math.floor(now / 1000);
        if (s !== second) {
          second = s;
          inSecond = 0;
        }
        if (++inSecond > opts.allowPerSecond) {
          d.refused++;
          res.writeHead(429, { 'retry-after': '1', 'content-type': 'text/plain' }).end('slow down');
          return;
        }
      }
      const body = Buffer.concat(chunks).toString();
      const item = JSON.parse(body) as { customer?: string };
      const customer = item.customer ?? '';
      inFlight++;
      d.maxInFlight = Math.max(d.maxInFlight, inFlight);
      byCustomer.set(customer, (byCustomer.get(customer) ?? 0) + 1);
      d.maxInFlightByCustomer.set(customer, Math.max(d.maxInFlightByCustomer.get(customer) ?? 0, byCustomer.get(customer)!));
      setTimeout(() => {
        inFlight--;
        byCustomer.set(customer, byCustomer.get(customer)! - 1);
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      }, opts.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  d.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/work`;
  d.close = () => new Promise((resolve) => server.close(() => resolve()));
  return d;
}

/** Most arrivals within any window of `ms`. */
function mostWithin(arrivals: number[], ms: number): number {
  const sorted = [...arrivals].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[j] >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('task limits across workers', () => {
  let c: Cluster | undefined;
  let downstream: Downstream | undefined;
  afterEach(async () => {
    await c?.stopAll();
    await downstream?.close();
    c = undefined;
    downstream = undefined;
  });

  async function cluster(task: string, limits: string | undefined, workers = 2): Promise<Cluster> {
    c = newCluster(inject('redisUrl'));
    await c.up(['--task', 'other=true']);
    const env: Record<string, string> = limits ? { FANOUT_TASK_LIMITS: limits } : {};
    for (let i = 0; i < workers; i++) await c.worker([task], { ...env, FANOUT_CONCURRENCY: '8' });
    return c;
  }

  it('maxConcurrent holds across two worker processes', { timeout: 120_000 }, async () => {
    downstream = await startDownstream({ delayMs: 150 });
    const c = await cluster(`slow=${downstream.url}`, 'slow:maxConcurrent=3');
    const items = Array.from({ length: 30 }, (_, i) => ({ n: i }));
    const batch = await c.client.createBatch({ task: 'slow', items, parallelism: 30 });
    expect((await c.client.waitForPhase(batch.id, undefined, 90_000)).status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, batch.id, items);
    // 16 slots in the two workers; the limit is 3 for both together
    expect(downstream.maxInFlight).toBeLessThanOrEqual(3);
    expect(downstream.arrivals.length).toBe(30);
  });

  it('maxPerSecond spaces starts across two worker processes', { timeout: 120_000 }, async () => {
    downstream = await startDownstream({ delayMs: 5 });
    const c = await cluster(`paced=${downstream.url}`, 'paced:maxPerSecond=10');
    const items = Array.from({ length: 25 }, (_, i) => ({ n: i }));
    const batch = await c.client.createBatch({ task: 'paced', items, parallelism: 25 });
    expect((await c.client.waitForPhase(batch.id, undefined, 90_000)).status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, batch.id, items);
    // starts are spaced 100 ms apart by Redis's clock; arrivals may bunch by a few ms
    expect(mostWithin(downstream.arrivals, 1000)).toBeLessThanOrEqual(11);
    const span = Math.max(...downstream.arrivals) - Math.min(...downstream.arrivals);
    expect(span).toBeGreaterThanOrEqual(24 * 100 * 0.9);
  });

  it('a batch concurrency key keeps each key value to maxConcurrentPerKey', { timeout: 120_000 }, async () => {
    downstream = await startDownstream({ delayMs: 150 });
    const c = await cluster(`keyed=${downstream.url}`, undefined);
    const items = Array.from({ length: 36 }, (_, i) => ({ customer: ['acme', 'globex', 'initech'][i % 3], n: i }));
    const batch = await c.client.createBatch({ task: 'keyed', items, parallelism: 36, concurrencyKey: '{{customer}}', maxConcurrentPerKey: 2 });
    expect((await c.client.waitForPhase(batch.id, undefined, 90_000)).status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, batch.id, items);
    for (const customer of ['acme', 'globex', 'initech']) {
      expect(downstream.maxInFlightByCustomer.get(customer), customer).toBeLessThanOrEqual(2);
    }
  });

  it('a 429 with Retry-After slows the whole task down instead of failing items', { timeout: 180_000 }, async () => {
    downstream = await startDownstream({ delayMs: 20, allowPerSecond: 8 });
    const c = await cluster(`limited=${downstream.url}`, undefined);
    const items = Array.from({ length: 60 }, (_, i) => ({ n: i }));
    // no retries: an item that failed on a 429 would fail the batch
    const batch = await c.client.createBatch({ task: 'limited', items, parallelism: 60, retry: { backoffLimitPerItem: 0 } });
    expect((await c.client.waitForPhase(batch.id, undefined, 150_000)).status.phase).toBe('Succeeded');
    const done = await expectAllSucceededOnce(c.client, batch.id, items);
    // each item has one attempt: the 429s were absorbed by slowing down, not by retries
    for (const item of done) expect(item.attempts.length, `attempts of item ${item.index}`).toBe(1);
    expect(downstream.refused).toBeGreaterThan(0);
    // the task's rate is shared and visible
    const metrics = await (await fetch(`${c.client.url}/metrics`)).text();
    const rate = /^fanout_task_rate_per_second\{task="limited"\} (\S+)$/m.exec(metrics);
    expect(rate, metrics.split('\n').filter((l) => l.includes('task_rate')).join('\n')).not.toBeNull();
    expect(Number(rate![1])).toBeGreaterThan(0);
  });

  it('bad concurrency keys and task limits are refused', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    await c.up(['--task', 'echo=cat']);
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ concurrencyKey: '{{customer}}' }, '/maxConcurrentPerKey'],
      [{ maxConcurrentPerKey: 2 }, '/concurrencyKey'],
      [{ concurrencyKey: '{{customer', maxConcurrentPerKey: 2 }, '/concurrencyKey'],
      [{ concurrencyKey: '{{customer}}', maxConcurrentPerKey: 0 }, '/maxConcurrentPerKey'],
      [{ concurrencyKey: '{{missing}}', maxConcurrentPerKey: 1 }, '/items/0'],
    ];
    for (const [fields, pointer] of bad) {
      const res = await c.client.request('POST', '/v1/batches', { task: 'echo', items: [{ customer: 'a' }], ...fields });
      expect(res.status, JSON.stringify(fields)).toBe(422);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      const body = (await res.json()) as { errors: Array<{ pointer: string }> };
      expect(body.errors.map((e) => e.pointer), JSON.stringify(fields)).toContain(pointer);
    }
    const list = (await (await c.client.request('GET', '/v1/batches')).json()) as { items: unknown[] };
    expect(list.items).toEqual([]);
    // a worker with a malformed limit, or one naming a task it does not run, does not start
    for (const [limits, says] of [
      ['echo:maxPerSecond=0', /maxPerSecond must be a number above 0/],
      ['ehco:maxConcurrent=2', /names task "ehco", which this process does not run/],
    ] as const) {
      const w = spawnFanout(['worker', '--task', 'echo=cat'], { ...c.env, FANOUT_TASK_LIMITS: limits });
      const code = await new Promise<number | null>((resolve) => w.child.once('exit', (code) => resolve(code)));
      expect(code, w.output()).not.toBe(0);
      expect(w.output()).toMatch(says);
    }
  });
});
