import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeServer, freePort, listenOnLoopback, useWorkerHarness } from './harness.js';
import { parseTaskFlag } from '../../src/worker/index.js';

const t = useWorkerHarness();
let server: Server;
let base: string;
const received: Array<{ url: string; headers: IncomingHttpHeaders; body: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ url: req.url ?? '', headers: req.headers, body });
      switch (req.url) {
        case '/echo':
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
          res.end(JSON.stringify({ got: JSON.parse(body) }));
          return;
        case '/text':
          res.writeHead(201, { 'content-type': 'text/plain' });
          res.end('hello\n');
          return;
        case '/missing':
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end(`no such   thing\n${'z'.repeat(5000)}`);
          return;
        case '/busy':
          res.writeHead(429, { 'retry-after': '7' });
          res.end('slow down');
          return;
        case '/down':
          res.writeHead(503, { 'retry-after': new Date(Date.now() + 30_000).toUTCString() });
          res.end();
          return;
        case '/deep':
          // Parsed, this answer would overflow JSON.stringify when the worker reports it.
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('['.repeat(100_000) + ']'.repeat(100_000));
          return;
        case '/slow':
          setTimeout(() => res.end('late'), 5000);
          return;
        default:
          res.writeHead(500);
          res.end('unexpected');
      }
    });
  });
  base = await listenOnLoopback(server);
});
afterAll(() => closeServer(server));
beforeEach(() => {
  received.length = 0;
});

describe('URL tasks', () => {
  it('a JSON answer nested deeper than 1000 levels fails the attempt with a reason instead of breaking the report', async () => {
    await t.h.worker({ tasks: [parseTaskFlag(`deep=${base}/deep`), parseTaskFlag(`echo=${base}/echo`)] });
    const lease = await t.h.lease('deep', ['a'], { batchId: 'b-deep' });
    const [item] = await t.h.waitForItems(1, lease.leaseId);
    expect(item).toMatchObject({ i: 0, outcome: 'failed', httpStatus: 200 });
    expect(item.error).toMatch(/nested deeper than 1000 levels/);
    // The worker is still healthy: the next lease runs.
    const next = await t.h.lease('echo', ['b'], { batchId: 'b-deep-2' });
    expect((await t.h.waitForItems(1, next.leaseId))[0]).toMatchObject({ outcome: 'succeeded', result: { got: 'b' } });
  });

  it('POSTs the item itself as JSON with the Fanout headers and parses a JSON answer', async () => {
    await t.h.worker({ tasks: [parseTaskFlag(`echo=${base}/echo`), parseTaskFlag(`text=${base}/text`)] });
    const lease = await t.h.lease('echo', [{ name: 'apple' }, 'foo'], { batchId: 'b-url', first: 5, attempt: 3 });
    const items = await t.h.waitForItems(2, lease.leaseId);
    expect(items.map((item) => [item.i, item.outcome, item.httpStatus, item.result])).toEqual([
      [5, 'succeeded', 200, { got: { name: 'apple' } }],
      [6, 'succeeded', 200, { got: 'foo' }],
    ]);
    const first = received.find((r) => r.headers['fanout-item-index'] === '5')!;
    expect(JSON.parse(first.body)).toEqual({ name: 'apple' });
    expect(first.headers).toMatchObject({
      'content-type': 'application/json',
      'fanout-batch-id': 'b-url',
      'fanout-attempt': '3',
    });
    expect(first.headers.authorization).toBeUndefined();

    const text = await t.h.lease('text', ['x']);
    const [textItem] = await t.h.waitForItems(1, text.leaseId);
    expect(textItem).toMatchObject({ outcome: 'succeeded', httpStatus: 201, result: 'hello\n' });
  });

  it('fails non-2xx answers with the status and a short excerpt, honouring Retry-After', async () => {
    // without the adaptive rate, which would first slow the task down and send the item again
    // (test/e2e/task-limits.test.ts): here the answer itself, as the retry policy sees it
    const direct = (flag: string) => ({ ...parseTaskFlag(flag), limits: { adaptive: false } });
    await t.h.worker({
      tasks: [direct(`missing=${base}/missing`), direct(`busy=${base}/busy`), direct(`down=${base}/down`)],
    });
    const missing = await t.h.lease('missing', ['x']);
    const busy = await t.h.lease('busy', ['x']);
    const down = await t.h.lease('down', ['x']);
    const [missingItem] = await t.h.waitForItems(1, missing.leaseId);
    expect(missingItem).toMatchObject({ outcome: 'failed', httpStatus: 404 });
    expect(missingItem.error!.startsWith('HTTP 404: no such thing zzz')).toBe(true);
    expect(missingItem.error!.length).toBeLessThan(600);
    expect(missingItem.retryAfterMs).toBeUndefined();
    expect(missingItem.networkError).toBeUndefined();

    const [busyItem] = await t.h.waitForItems(1, busy.leaseId);
    expect(busyItem).toMatchObject({ outcome: 'failed', httpStatus: 429, retryAfterMs: 7000, error: 'HTTP 429: slow down' });

    const [downItem] = await t.h.waitForItems(1, down.leaseId);
    expect(downItem).toMatchObject({ outcome: 'failed', httpStatus: 503 });
    expect(downItem.retryAfterMs).toBeGreaterThan(25_000);
    expect(downItem.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('fails a refused connection as a network error without a status', async () => {
    const port = await freePort();
    await t.h.worker({ tasks: [parseTaskFlag(`refused=http://127.0.0.1:${port}/x`)] });
    const lease = await t.h.lease('refused', ['x']);
    const [item] = await t.h.waitForItems(1, lease.leaseId);
    expect(item).toMatchObject({ outcome: 'failed', networkError: true });
    expect(item.httpStatus).toBeUndefined();
    expect(item.error).toContain('ECONNREFUSED');
  });

  it('times out a slow endpoint with condition Timeout', async () => {
    await t.h.worker({ tasks: [parseTaskFlag(`slow=${base}/slow`)] });
    const lease = await t.h.lease('slow', ['x'], { timeoutMs: 300 });
    const [item] = await t.h.waitForItems(1, lease.leaseId);
    expect(item).toMatchObject({ outcome: 'failed', condition: 'Timeout' });
    expect(item.httpStatus).toBeUndefined();
    expect(item.finishedAt! - item.startedAt!).toBeLessThan(2000);
  });
});
