import net from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * Slow clients are cut, long transfers that keep moving are not (FANOUT_HTTP_*_TIMEOUT_SECONDS).
 * Trickling clients are raw sockets on 127.0.0.1 sending a byte at a time.
 */

interface Trickle {
  /** ms from connect to the server closing the connection */
  closedAfter: Promise<number>;
  /** what the server answered before closing */
  received(): string;
}

/** The head of an NDJSON batch upload that declares 100,000 bytes, and its first body bytes. */
function ndjsonUploadHead(apiKey: string, firstBytes: string): string {
  return ['POST /v1/batches HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${apiKey}`, 'Content-Type: application/x-ndjson', 'Content-Length: 100000', '', firstBytes].join('\r\n');
}

/** Connects, sends `head` at once, then one byte of `trickle` every `everyMs` until closed. */
function trickle(url: string, head: string, trickleText: string, everyMs = 200): Trickle {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  let received = '';
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  socket.on('data', (d) => (received += d.toString()));
  const closedAfter = new Promise<number>((resolve) => {
    socket.on('close', () => {
      clearInterval(timer);
      resolve(Date.now() - started);
    });
    socket.on('error', () => {});
  });
  socket.once('connect', () => {
    socket.write(head);
    let i = 0;
    timer = setInterval(() => {
      if (!socket.writable) return;
      socket.write(trickleText[i++ % trickleText.length]);
    }, everyMs);
  });
  // a test that fails must not leave the socket open
  setTimeout(() => socket.destroy(), 20_000).unref();
  return { closedAfter, received: () => received };
}

describe('slow clients', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      tasks: ['hold=sleep 30'],
      env: {
        FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS: '1',
        FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS: '2',
        FANOUT_HTTP_IDLE_TIMEOUT_SECONDS: '2',
        FANOUT_EVENTS_HEARTBEAT_MS: '300',
      },
    });
  });
  afterAll(async () => svc?.close());

  it('headers trickled a byte at a time: closed with 408 after the headers timeout', async () => {
    const t = trickle(svc.url, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    const ms = await t.closedAfter;
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(3000);
    expect(t.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('many trickling clients at once are all closed, and the server still answers', async () => {
    const clients = Array.from({ length: 50 }, () => trickle(svc.url, 'GET /healthz HTTP/1.1\r\n', 'X-Slow: bbbbbbbbbbbbbbbbbbbbbbbbbbbb', 300));
    const times = await Promise.all(clients.map((c) => c.closedAfter));
    expect(Math.max(...times)).toBeLessThan(4000);
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
  });

  it('a body trickled a byte at a time: closed after the request timeout', async () => {
    const head = ndjsonUploadHead(svc.apiKey, '{"task":"hold"}\n');
    const t = trickle(svc.url, head, '"x"\n');
    const ms = await t.closedAfter;
    expect(ms).toBeGreaterThanOrEqual(1900);
    expect(ms).toBeLessThan(5000);
  });

  it('a connection that never sends anything is closed', async () => {
    const t = trickle(svc.url, '', '', 60_000);
    const ms = await t.closedAfter;
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(3000);
    expect(t.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('an event stream outlives every timeout: heartbeats keep it open', async () => {
    const batch = await svc.client.createBatch({ task: 'hold', items: ['a'] });
    const controller = new AbortController();
    const res = await fetch(`${svc.url}/v1/batches/${batch.id}/events`, { headers: { authorization: `Bearer ${svc.apiKey}` }, signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const started = Date.now();
    let bytes = 0;
    // 5 s: longer than the headers (1 s), request (2 s) and idle (2 s) timeouts together
    while (Date.now() - started < 5000) {
      const chunk = await reader.read();
      expect(chunk.done, `stream ended after ${Date.now() - started} ms`).toBe(false);
      bytes += chunk.value!.length;
    }
    expect(bytes).toBeGreaterThan(0);
    controller.abort();
    await svc.client.json('POST', `/v1/batches/${batch.id}/cancel`);
  });
});

describe('a large upload that keeps sending', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      tasks: ['echo=cat'],
      env: { FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS: '1', FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS: '30', FANOUT_HTTP_IDLE_TIMEOUT_SECONDS: '1', FANOUT_EVENTS_HEARTBEAT_MS: '500' },
    });
  });
  afterAll(async () => svc?.close());

  it('an upload that stops moving is closed after the idle timeout, long before the request timeout', async () => {
    const head = ndjsonUploadHead(svc.apiKey, '{"task":"echo"}\n"a"\n');
    const t = trickle(svc.url, head, '', 60_000);
    const ms = await t.closedAfter;
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(4000);
  });

  it('is not cut by the headers or idle timeouts while it moves (3 s of NDJSON in slices)', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => `${JSON.stringify(`item-${i}`)}\n`);
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode('{"task":"echo","parallelism":4}\n'));
        for (const line of lines) {
          await new Promise((r) => setTimeout(r, 100));
          controller.enqueue(new TextEncoder().encode(line));
        }
        controller.close();
      },
    });
    const res = await svc.client.request('POST', '/v1/batches', body, { 'content-type': 'application/x-ndjson' });
    expect(res.status).toBe(202);
    const batch = await res.json();
    const done = await svc.client.waitForPhase(batch.id);
    expect(done.status.counts.succeeded).toBe(30);
  });

  it('a large result download read slowly outlives the headers and idle timeouts', { timeout: 120_000 }, async () => {
    // 12 MiB of results: more than loopback socket buffers hold, so the server writes as the client reads
    const big = 'x'.repeat(120 * 1024);
    const lines = ['{"task":"echo","parallelism":8}', ...Array.from({ length: 100 }, () => JSON.stringify(big))];
    const res = await svc.client.request('POST', '/v1/batches', lines.join('\n') + '\n', { 'content-type': 'application/x-ndjson' });
    expect(res.status).toBe(202);
    const batch = await res.json();
    expect((await svc.client.waitForPhase(batch.id, undefined, 90_000)).status.counts.succeeded).toBe(100);

    const download = await svc.client.request('GET', `/v1/batches/${batch.id}/results`);
    const reader = download.body!.getReader();
    const started = Date.now();
    let bytes = 0;
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      bytes += chunk.value.length;
      // about 2 MiB a second, with pauses shorter than the idle timeout
      await new Promise((r) => setTimeout(r, Math.round(chunk.value.length / 2048)));
    }
    expect(bytes).toBeGreaterThan(100 * big.length);
    expect(Date.now() - started).toBeGreaterThan(2000);
  });
});
