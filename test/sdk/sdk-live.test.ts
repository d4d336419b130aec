import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { createFanoutClient, FanoutProblemError, type BatchProgress, type FanoutClient } from '../../sdk/src/index.js';

/** Counts the bytes of each response body as the SDK pulls them, so a test sees how far a stream was read. */
function countingFetch() {
  const counter = { pulled: 0, requests: [] as string[] };
  const fetchFn = async (input: Request): Promise<Response> => {
    counter.requests.push(`${input.method} ${new URL(input.url).pathname}`);
    const res = await fetch(input);
    if (!res.body || !input.url.endsWith('/results')) return res;
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const chunk = await reader.read();
          if (chunk.done) return controller.close();
          counter.pulled += chunk.value.byteLength;
          controller.enqueue(chunk.value);
        },
        cancel: (reason) => reader.cancel(reason),
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return { counter, fetchFn };
}

/** The SDK against the real service: create, wait, stream results, page, problems, actions. */
describe('TypeScript SDK against a live service', () => {
  let svc: TestService;
  let sdk: FanoutClient;
  let echoServer: http.Server;
  const counting = countingFetch();
  beforeAll(async () => {
    // A URL task that answers with the item: 10,000 items without spawning 10,000 processes.
    echoServer = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      req.pipe(res);
    });
    await new Promise<void>((resolve) => echoServer.listen(0, '127.0.0.1', resolve));
    const echoUrl = `http://127.0.0.1:${(echoServer.address() as AddressInfo).port}/`;
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev', 'echo=cat', `echo-url=${echoUrl}`] });
    sdk = createFanoutClient({ baseUrl: svc.url, apiKey: svc.apiKey, fetch: counting.fetchFn });
  });
  afterAll(async () => {
    await svc?.close();
    await new Promise((resolve) => echoServer?.close(resolve));
  });

  it('creates 10,000 echo items, waits, and streams the results in order without reading the body ahead', async () => {
    const n = 10_000;
    const items = Array.from({ length: n }, (_, i) => i);
    const created = await sdk.createBatch({ task: 'echo-url', parallelism: 200, items }, { idempotencyKey: `k-${randomBytes(4).toString('hex')}` });
    expect(created.status.counts.total).toBe(n);

    const seen: BatchProgress[] = [];
    counting.counter.requests = [];
    const done = await sdk.waitForBatch(created.id, { onProgress: (p) => seen.push(p), pollMs: 200 });
    expect(done.status.phase).toBe('Succeeded');
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)!.counts.succeeded).toBe(n);
    // The server has the event stream: one request follows the batch, one reads it when done.
    expect(counting.counter.requests).toEqual([`GET /v1/batches/${created.id}/events`, `GET /v1/batches/${created.id}`]);

    counting.counter.pulled = 0;
    let count = 0;
    let pulledAtFirst = -1;
    let lineBytes = 0;
    let maxAhead = 0;
    for await (const line of sdk.results(created.id)) {
      if (count === 0) pulledAtFirst = counting.counter.pulled;
      expect(line.index).toBe(count);
      expect(line.status).toBe('succeeded');
      expect(line.result).toBe(count);
      lineBytes += Buffer.byteLength(JSON.stringify(line)) + 1;
      maxAhead = Math.max(maxAhead, counting.counter.pulled - lineBytes);
      count++;
    }
    const total = counting.counter.pulled;
    expect(count).toBe(n);
    // The first line arrives after a small part of the body was read, and the reader never
    // runs far ahead of what it has yielded: the body is never held whole.
    expect(pulledAtFirst).toBeGreaterThan(0);
    expect(pulledAtFirst).toBeLessThan(total / 4);
    expect(maxAhead).toBeLessThan(total / 4);
  }, 180_000);

  it('stops reading the results stream when the consumer breaks early', async () => {
    const b = await sdk.createBatch({ task: 'echo-url', items: Array.from({ length: 500 }, (_, i) => `x${i}`) });
    await sdk.waitForBatch(b.id, { pollMs: 100 });
    const first: unknown[] = [];
    for await (const line of sdk.results(b.id)) {
      first.push(line.result);
      if (first.length === 3) break;
    }
    expect(first).toEqual(['x0', 'x1', 'x2']);
  });

  it('pages over more than one page of batches with labelSelector and phase', async () => {
    const run = `r${randomBytes(3).toString('hex')}`;
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await sdk.createBatch({ task: 'rev', labels: { sdkrun: run }, items: ['ab'] })).id);
    for (const id of ids) await sdk.waitForBatch(id, { pollMs: 100 });

    const urls: string[] = [];
    const paging = createFanoutClient({
      baseUrl: svc.url,
      apiKey: svc.apiKey,
      fetch: (req) => {
        urls.push(req.url);
        return fetch(req);
      },
    });
    const listed: string[] = [];
    for await (const b of paging.listBatches({ labelSelector: `sdkrun=${run}`, phase: 'Succeeded', limit: 3 })) listed.push(b.id);
    expect(listed).toEqual([...ids].reverse()); // newest first, no gaps, no duplicates
    expect(urls.length).toBe(3);
    expect(urls.filter((u) => u.includes('cursor=')).length).toBe(2);

    const none: string[] = [];
    for await (const b of paging.listBatches({ labelSelector: `sdkrun=${run}`, phase: 'Running' })) none.push(b.id);
    expect(none).toEqual([]);
  });

  it('turns a 422 into a FanoutProblemError with pointers', async () => {
    const err = await sdk.createBatch({ task: 'echo', parallelism: 0, items: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FanoutProblemError);
    const p = err as FanoutProblemError;
    expect(p.status).toBe(422);
    expect(p.title).toBeTruthy();
    expect(typeof p.type).toBe('string');
    expect(p.detail).toBeTruthy();
    const pointers = p.errors.map((e) => e.pointer);
    expect(pointers.some((ptr) => ptr.endsWith('/parallelism')), JSON.stringify(p.errors)).toBe(true);
    expect(pointers.some((ptr) => ptr.endsWith('/items')), JSON.stringify(p.errors)).toBe(true);
  });

  it('turns a 404 and a refused action into problem errors, and results() of an unknown batch too', async () => {
    await expect(sdk.getBatch('b-does-not-exist')).rejects.toMatchObject({ name: 'FanoutProblemError', status: 404 });
    const it = sdk.results('b-does-not-exist');
    await expect(it.next()).rejects.toMatchObject({ status: 404 });
    const b = await sdk.createBatch({ task: 'rev', items: ['abc'] });
    const done = await sdk.waitForBatch(b.id, { pollMs: 100 });
    expect(done.status.phase).toBe('Succeeded');
    const refused = await sdk.suspend(b.id).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FanoutProblemError);
    expect((refused as FanoutProblemError).status).toBe(409);
  });

  it('suspends, resumes and cancels a batch', async () => {
    const b = await sdk.createBatch({ task: 'echo', items: Array.from({ length: 20 }, (_, i) => i) });
    const suspended = await sdk.suspend(b.id);
    expect(['Suspended', 'Succeeded']).toContain(suspended.status.phase);
    if (suspended.status.phase === 'Suspended') {
      const resumed = await sdk.resume(b.id);
      expect(resumed.status.phase).not.toBe('Suspended');
    }
    const c = await sdk.createBatch({ task: 'echo', items: [1, 2, 3] });
    const cancelled = await sdk.cancel(c.id).catch((e: unknown) => e);
    if (cancelled instanceof FanoutProblemError) expect(cancelled.status).toBe(409); // already finished
    else expect((await sdk.waitForBatch(c.id, { pollMs: 100 })).status.phase).toMatch(/Cancelled|Succeeded/);
  });

  it('waitForBatch falls back to polling when the events endpoint is missing, and honours the signal', async () => {
    const noEvents = createFanoutClient({
      baseUrl: svc.url,
      apiKey: svc.apiKey,
      fetch: (req) => (req.url.endsWith('/events') ? Promise.resolve(new Response('{"status":404}', { status: 404 })) : fetch(req)),
    });
    const b = await noEvents.createBatch({ task: 'rev', items: ['abc', 'de'] });
    const progress: BatchProgress[] = [];
    const done = await noEvents.waitForBatch(b.id, { pollMs: 50, onProgress: (p) => progress.push(p) });
    expect(done.status.phase).toBe('Succeeded');
    expect(progress.at(-1)).toMatchObject({ phase: 'Succeeded', counts: { succeeded: 2 } });

    const ac = new AbortController();
    const s = await noEvents.createBatch({ task: 'rev', items: ['x'] });
    await noEvents.suspend(s.id).catch(() => undefined);
    const waiting = noEvents.waitForBatch(s.id, { pollMs: 50, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop waiting')), 200);
    const outcome = await waiting.then((x) => x.status.phase).catch((e: Error) => e.message);
    // Either the batch finished before the suspend landed, or the wait was aborted.
    expect(['Succeeded', 'stop waiting']).toContain(outcome);
  });
});
