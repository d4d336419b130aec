import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchTokens } from '../../src/api/tokens.js';
import { serverSecret } from '../../src/store/tenants.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem, registerTaskWithoutWorker, waitUntil } from './support.js';

/**
 * GET …/items/{i}/input and PUT …/items/{i}/result with a batch-scoped token, the test acting as
 * the worker: no worker runs, the task is registered in Redis the way workers do it.
 */
describe('worker endpoints', () => {
  const INLINE = 1024;
  const MAX_RESULT = 3_000_000;
  let svc: TestService;
  let batch: any;
  let other: any;
  let token: string;
  let otherToken: string;
  beforeAll(async () => {
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      workers: false,
      env: { FANOUT_INLINE_RESULT_BYTES: String(INLINE), FANOUT_MAX_RESULT_BYTES: String(MAX_RESULT) },
    });
    await registerTaskWithoutWorker(svc, 'ext');
    batch = await svc.client.createBatch({ task: 'ext', items: ['plain', { customId: 'obj', n: 1 }, 'big', 'json', 'limit'] });
    other = await svc.client.createBatch({ task: 'ext', items: ['x'] });
    const tokens = batchTokens(await svc.service.store.write(serverSecret()));
    token = tokens.sign(batch.id);
    otherToken = tokens.sign(other.id);
    // Released to Redis: the items are running, waiting for a worker.
    await waitUntil(async () => (await svc.client.getBatch(batch.id)).status.counts.running === 5, 'items to be released');
  });
  afterAll(async () => svc?.close());

  const asWorker = (method: string, p: string, tok: string, body?: BodyInit, headers: Record<string, string> = {}) =>
    fetch(`${svc.url}${p}`, { method, body, headers: { authorization: `Bearer ${tok}`, ...headers } });
  const put = (i: number, body: BodyInit, headers: Record<string, string> = { 'content-type': 'text/plain' }, tok = token) =>
    asWorker('PUT', `/v1/batches/${batch.id}/items/${i}/result`, tok, body, headers);
  const item = async (i: number) => (await svc.client.json('GET', `/v1/batches/${batch.id}/items/${i}`)).body;

  it('GET input with the batch token: the item as JSON and its attempt', async () => {
    const r0 = await asWorker('GET', `/v1/batches/${batch.id}/items/0/input`, token);
    expect(r0.status).toBe(200);
    expect(r0.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r0.headers.get('fanout-attempt')).toBe('1');
    expect(await r0.json()).toBe('plain');
    const r1 = await asWorker('GET', `/v1/batches/${batch.id}/items/1/input`, token);
    expect(await r1.json()).toEqual({ customId: 'obj', n: 1 });
    await expectProblem(await asWorker('GET', `/v1/batches/${batch.id}/items/99/input`, token), 404);
  });

  it("another batch's token → 403 on input and result; the item is untouched", async () => {
    await expectProblem(await asWorker('GET', `/v1/batches/${batch.id}/items/0/input`, otherToken), 403);
    await expectProblem(await put(0, 'forged', undefined, otherToken), 403);
    await expectProblem(await asWorker('GET', `/v1/batches/${batch.id}/items/0/input`, 'fbt_not-a-real-token'), 403);
    expect((await item(0)).status).toBe('running');
  });

  it('a worker token opens only the worker routes (and reading its batch: batch-token-read.test.ts)', async () => {
    for (const p of [`/v1/batches/${batch.id}/items`, `/v1/batches/${batch.id}/results`, '/v1/batches']) {
      await expectProblem(await asWorker('GET', p, token), 401);
    }
    await expectProblem(await asWorker('POST', `/v1/batches/${batch.id}/cancel`, token), 401);
  });

  it('PUT a small text result: recorded once, inline; a second PUT changes nothing', async () => {
    const r = await put(0, 'hello world');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ recorded: true });
    const it0 = await item(0);
    expect(it0).toMatchObject({ status: 'succeeded', result: 'hello world' });
    expect(it0.attempts).toHaveLength(1);
    expect(it0.attempts[0]).toMatchObject({ attempt: 1, outcome: 'succeeded' });

    const again = await put(0, 'overwrite?');
    expect(await again.json()).toEqual({ recorded: false });
    expect((await item(0)).result).toBe('hello world');
  });

  it('PUT for a stale attempt is not recorded', async () => {
    const r = await put(1, 'stale', { 'content-type': 'text/plain', 'fanout-attempt': '7' });
    expect(await r.json()).toEqual({ recorded: false });
    expect((await item(1)).status).toBe('running');
    const ok = await put(1, 'fresh', { 'content-type': 'text/plain', 'fanout-attempt': '1' });
    expect(await ok.json()).toEqual({ recorded: true });
    expect((await item(1)).result).toBe('fresh');
  });

  it('PUT a JSON result keeps its structure; malformed JSON → 400', async () => {
    await expectProblem(await put(3, '{"a": ', { 'content-type': 'application/json' }), 400);
    expect((await item(3)).status).toBe('running');
    const r = await put(3, JSON.stringify({ a: [1, 2], b: 'x' }), { 'content-type': 'application/json' });
    expect(await r.json()).toEqual({ recorded: true });
    expect((await item(3)).result).toEqual({ a: [1, 2], b: 'x' });
  });

  it('a result over the result limit → 413 and no blob left behind', async () => {
    const r = await put(4, 'z'.repeat(MAX_RESULT + 10));
    await expectProblem(r, 413);
    expect((await item(4)).status).toBe('running');
    const blobDir = path.join(svc.dataDir, 'blobs', batch.id);
    const left = fs.existsSync(blobDir) ? fs.readdirSync(blobDir).filter((f) => f.startsWith('4.')) : [];
    expect(left).toEqual([]);
    expect(await (await put(4, 'small')).json()).toEqual({ recorded: true });
  });

  it('PUT a 2 MB result: it lands in the blob directory and GET …/results streams it back intact', async () => {
    // Quotes, backslashes, control and multi-byte characters, so chunk edges split some of them.
    const unit = 'line "quoted" \\ back é ü 😀 \t tab \u0001 ctl\n';
    const payload = unit.repeat(Math.ceil((2 * 1024 * 1024) / Buffer.byteLength(unit)));
    const bytes = Buffer.byteLength(payload);
    expect(bytes).toBeGreaterThanOrEqual(2 * 1024 * 1024);
    const r = await put(2, payload);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ recorded: true });

    const blobDir = path.join(svc.dataDir, 'blobs', batch.id);
    const files = fs.readdirSync(blobDir).filter((f) => f.startsWith('2.'));
    expect(files).toHaveLength(1);
    expect(fs.statSync(path.join(blobDir, files[0])).size).toBe(bytes);
    const row = await item(2);
    expect(row.status).toBe('succeeded');
    expect(row.resultTruncated).toBe(true);
    expect(row.result).toBeUndefined();

    const res = await svc.client.request('GET', `/v1/batches/${batch.id}/results`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3, 4]);
    expect(lines[2].result.length).toBe(payload.length);
    expect(lines[2].result === payload).toBe(true);
    expect(lines[2]).toMatchObject({ index: 2, customId: null, status: 'succeeded', error: null, attempts: 1 });
    expect(lines[1]).toMatchObject({ customId: 'obj', result: 'fresh' });
  });

  it('the batch succeeds once every item has its result', async () => {
    const done = await svc.client.waitForPhase(batch.id, undefined, 30_000);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.completedIndexes).toBe('0-4');
    // The other batch is untouched by all of the above.
    expect((await svc.client.getBatch(other.id)).status.counts.running).toBe(1);
  });

  it('deleting the batch removes its blob results too', async () => {
    const blobDir = path.join(svc.dataDir, 'blobs', batch.id);
    expect(fs.existsSync(blobDir)).toBe(true);
    expect((await svc.client.request('DELETE', `/v1/batches/${batch.id}`)).status).toBe(204);
    expect(fs.existsSync(blobDir)).toBe(false);
  });
});
