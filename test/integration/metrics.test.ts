import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseTaskFlag, startWorker, type RunningWorker } from '../../src/worker/index.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { registerTaskWithoutWorker, waitUntil } from './support.js';

/**
 * /metrics beyond the batch gauges: HTTP request durations by route template, the event-loop
 * delay, and the backlog per task that worker autoscaling reads (docs/operations.md "Metrics").
 */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (no escapes in the label values used here). */
function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

describe('/metrics: HTTP durations, event-loop delay, backlog per task', () => {
  let svc: TestService;
  let worker: RunningWorker | undefined;
  let holder: RunningWorker | undefined;
  beforeAll(async () => {
    // No in-process workers: the task is registered, so batches are accepted, and nothing takes their items.
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false });
    await registerTaskWithoutWorker(svc, 'rev');
    await registerTaskWithoutWorker(svc, 'other');
    await registerTaskWithoutWorker(svc, 'probe');
  });
  afterAll(async () => {
    await worker?.close();
    await holder?.close();
    await svc?.close();
  });

  const scrape = async () => {
    const res = await fetch(`${svc.url}/metrics`);
    expect(res.status).toBe(200);
    return parseSamples(await res.text());
  };
  const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

  it('HTTP request durations are labelled by method, route template and status, never by raw path', async () => {
    const batch = await svc.client.createBatch({ task: 'probe', items: ['a'] });
    const calls = [
      await svc.client.request('GET', `/v1/batches/${batch.id}`),
      await svc.client.request('GET', `/v1/batches/${batch.id}`),
      await svc.client.request('GET', '/v1/batches/b0000000000nosuchbatch'),
      await svc.client.request('GET', `/v1/batches/${batch.id}/items/0`),
      await fetch(`${svc.url}/v1/batches/${batch.id}`), // no API key
      await fetch(`${svc.url}/no/such/route/${batch.id}`),
      await fetch(`${svc.url}/healthz`, { method: 'DELETE' }),
      await fetch(`${svc.url}/healthz`, { method: 'PROPFIND' }),
    ];
    expect(calls.map((r) => r.status)).toEqual([200, 200, 404, 200, 401, 404, 405, 405]);
    await Promise.all(calls.map((r) => r.arrayBuffer()));

    const samples = await scrape();
    const count = (labels: Record<string, string>) => value(samples, 'fanout_http_request_duration_seconds_count', labels);
    expect(count({ method: 'POST', route: '/v1/batches', status: '202' })).toBeGreaterThanOrEqual(1);
    expect(count({ method: 'GET', route: '/v1/batches/{id}', status: '200' })).toBe(2);
    expect(count({ method: 'GET', route: '/v1/batches/{id}', status: '404' })).toBe(1);
    expect(count({ method: 'GET', route: '/v1/batches/{id}', status: '401' })).toBe(1);
    expect(count({ method: 'GET', route: '/v1/batches/{id}/items/{index}', status: '200' })).toBe(1);
    expect(count({ method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(count({ method: 'DELETE', route: 'unmatched', status: '405' })).toBe(1);
    expect(count({ method: 'other', route: 'unmatched', status: '405' })).toBe(1);
    const sum = value(samples, 'fanout_http_request_duration_seconds_sum', { method: 'GET', route: '/v1/batches/{id}', status: '200' })!;
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(10);

    const http = samples.filter((s) => s.name.startsWith('fanout_http_request_duration_seconds'));
    for (const s of http) {
      expect(Object.keys(s.labels).sort()).toEqual(s.name.endsWith('_bucket') ? ['le', 'method', 'route', 'status'] : ['method', 'route', 'status']);
      expect(s.labels.route).toMatch(/^(unmatched|\/[a-z0-9/{}._-]*)$/i);
      expect(Object.values(s.labels).join(' ')).not.toMatch(new RegExp(`${batch.id}|nosuchbatch|no/such`));
    }
  });

  it('a streamed response is timed to its headers: an open SSE stream is already counted', async () => {
    // no worker runs `probe`: the batch never ends, so neither does its event stream
    const batch = await svc.client.createBatch({ task: 'probe', items: ['e'] });
    const stream = await svc.client.request('GET', `/v1/batches/${batch.id}/events`, undefined, { accept: 'text/event-stream' });
    try {
      expect(stream.status).toBe(200);
      expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const samples = await scrape();
      expect(value(samples, 'fanout_http_request_duration_seconds_count', { method: 'GET', route: '/v1/batches/{id}/events', status: '200' })).toBe(1);
      expect(value(samples, 'fanout_http_request_duration_seconds_sum', { method: 'GET', route: '/v1/batches/{id}/events', status: '200' })).toBeLessThan(5);
    } finally {
      await stream.body?.cancel();
    }
  });

  it('the event-loop delay shows a 200 ms block of the loop', async () => {
    await scrape(); // the delay histogram restarts at each scrape
    await new Promise((r) => setTimeout(r, 50));
    const until = performance.now() + 200;
    while (performance.now() < until) {
      // hold the event loop
    }
    await new Promise((r) => setTimeout(r, 50));
    const samples = await scrape();
    const max = value(samples, 'nodejs_eventloop_lag_max_seconds')!;
    expect(max).toBeGreaterThanOrEqual(0.15);
    expect(max).toBeLessThan(5);
    const p50 = value(samples, 'nodejs_eventloop_lag_p50_seconds')!;
    expect(p50).toBeGreaterThan(0);
    expect(p50).toBeLessThanOrEqual(max);
    expect(value(samples, 'nodejs_eventloop_lag_p99_seconds')).toBeLessThanOrEqual(max);
  });

  it('the backlog counts items no worker has taken, released or not, and drops to 0 once a worker drains them', async () => {
    // All 20 released into Redis at once (store: running, no worker holds them) …
    const released = await svc.client.createBatch({ task: 'rev', items: Array.from({ length: 20 }, (_, i) => `r${i}`) });
    // … and 30 of which 2 at a time are released (the rest stay pending in the store).
    const throttled = await svc.client.createBatch({ task: 'rev', parallelism: 2, items: Array.from({ length: 30 }, (_, i) => `t${i}`) });
    // Another task: counted apart.
    await svc.client.createBatch({ task: 'other', items: ['o0', 'o1'] });
    // Suspended: its items wait for a resume, not for a worker.
    const suspended = await svc.client.createBatch({ task: 'rev', items: ['s0', 's1', 's2'] });
    expect((await svc.client.request('POST', `/v1/batches/${suspended.id}/suspend`)).status).toBe(200);
    await svc.client.waitForPhase(suspended.id, ['Suspended']);
    await waitUntil(async () => (await svc.client.getBatch(throttled.id)).status.counts.running === 2, 'the throttled batch to release 2 items');
    const before = await scrape();
    expect(value(before, 'fanout_queue_backlog', { task: 'rev' })).toBe(50);
    expect(value(before, 'fanout_queue_backlog', { task: 'other' })).toBe(2);
    expect(before.filter((s) => s.name === 'fanout_queue_backlog').map((s) => s.labels.task)).toEqual(expect.arrayContaining(['other', 'rev']));

    worker = await startWorker({
      connection: svc.redisUrl,
      prefix: svc.prefix,
      tasks: [parseTaskFlag('rev=rev')],
      concurrency: 4,
      apiUrl: svc.url,
      leaseMs: 2000,
      inlineResultLimit: 64 * 1024,
      logger: pino({ level: 'silent' }),
    });
    await svc.client.waitForPhase(released.id);
    await svc.client.waitForPhase(throttled.id);
    expect(value(await scrape(), 'fanout_queue_backlog', { task: 'rev' })).toBe(0);
    expect((await svc.client.getBatch(suspended.id)).status.phase).toBe('Suspended');
  });

  it('a lease a worker holds is not backlog: one slot busy on a 5-item batch leaves 4', async () => {
    // Concurrency 1 and 5 items: 5 leases of 1 item (lease size ceil(5/16)); the worker holds one.
    holder = await startWorker({
      connection: svc.redisUrl,
      prefix: svc.prefix,
      tasks: [parseTaskFlag('hold=sleep 5')],
      concurrency: 1,
      apiUrl: svc.url,
      leaseMs: 2000,
      inlineResultLimit: 64 * 1024,
      logger: pino({ level: 'silent' }),
    });
    const batch = await svc.client.createBatch({ task: 'hold', items: [1, 2, 3, 4, 5] });
    await waitUntil(async () => value(await scrape(), 'fanout_queue_backlog', { task: 'hold' }) === 4, 'a backlog of 4 while the worker runs its first item', 4000, 50);
    expect((await svc.client.request('POST', `/v1/batches/${batch.id}/cancel`)).status).toBe(200);
    await svc.client.waitForPhase(batch.id, ['Cancelled']);
    expect(value(await scrape(), 'fanout_queue_backlog', { task: 'hold' })).toBe(0);
  });
});
