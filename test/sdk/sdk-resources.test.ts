import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { createFanoutClient, FanoutProblemError, type FanoutClient } from '../../sdk/src/index.js';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A body that hands out `lines` one read at a time: an upload the client cannot know the length of. */
function streamOf(lines: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let i = 0;
  return new ReadableStream<Uint8Array>({ pull: (c) => (i < lines.length ? c.enqueue(enc.encode(lines[i++])) : c.close()) });
}

/** The SDK calls beyond batches, against the real service: NDJSON uploads, items, deletes, schedules, webhooks. */
describe('SDK resources against a live service', () => {
  let svc: TestService;
  let sdk: FanoutClient;
  const requests: string[] = [];
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev'], env: { FANOUT_WEBHOOK_ALLOW: '127.0.0.1' } });
    sdk = createFanoutClient({
      baseUrl: `${svc.url}/`,
      apiKey: svc.apiKey,
      fetch: (req) => {
        requests.push(`${req.method} ${req.url.slice(svc.url.length)}`);
        return fetch(req);
      },
    });
  });
  afterAll(async () => svc?.close());

  it('creates a batch from a streamed NDJSON body and from text, idempotently', async () => {
    const lines = ['{"task":"rev","labels":{"via":"ndjson"}}\n', '"abc"\n', '"de', '"\n{"customId":"c","text":"xy"}\n'];
    const streamed = await sdk.createBatchFromNdjson(streamOf(lines), { idempotencyKey: 'nd-1' });
    expect(streamed.status.counts.total).toBe(3);
    expect(streamed.labels).toEqual({ via: 'ndjson' });
    const again = await sdk.createBatchFromNdjson(lines.join(''), { idempotencyKey: 'nd-1' });
    expect(again.id).toBe(streamed.id);

    const bad = await sdk.createBatchFromNdjson('{"task":"rev"}\n"a"\n{nope\n').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(FanoutProblemError);
    expect((bad as FanoutProblemError).status).toBe(422);
    expect((bad as FanoutProblemError).errors.some((e) => e.line === 3)).toBe(true);
  });

  it('lists items page by page with a status filter, and reads one item', async () => {
    const b = await sdk.createBatch({ task: 'rev', items: Array.from({ length: 7 }, (_, i) => `i${i}`) });
    await sdk.waitForBatch(b.id, { pollMs: 100 });
    requests.length = 0;
    const items = await collect(sdk.listItems(b.id, { limit: 3 }));
    expect(items.map((i) => i.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(requests.filter((r) => r.includes('/items?'))).toHaveLength(3);
    expect(await collect(sdk.listItems(b.id, { status: 'failed' }))).toEqual([]);
    const one = await sdk.getItem(b.id, 4);
    expect(one).toMatchObject({ index: 4, status: 'succeeded', result: '4i' });
    expect(one.attempts[0]?.outcome).toBe('succeeded');
    await expect(sdk.getItem(b.id, 70)).rejects.toMatchObject({ name: 'FanoutProblemError', status: 404 });
  });

  it('deletes a batch by id and batches by label selector', async () => {
    const keep = await sdk.createBatch({ task: 'rev', labels: { sweep: 'keep' }, items: ['a'] });
    const gone = await Promise.all([1, 2].map(() => sdk.createBatch({ task: 'rev', labels: { sweep: 'yes' }, items: ['a'] })));
    for (const b of [keep, ...gone]) await sdk.waitForBatch(b.id, { pollMs: 100 });
    expect(await sdk.deleteBatches('sweep=yes')).toBe(2);
    expect(await sdk.deleteBatches('sweep=yes')).toBe(0);
    await sdk.deleteBatch(keep.id);
    await expect(sdk.getBatch(keep.id)).rejects.toMatchObject({ status: 404 });
    await expect(sdk.deleteBatch(keep.id)).rejects.toMatchObject({ status: 404 });
    await expect(sdk.deleteBatches('a in (')).rejects.toMatchObject({ status: 400 });
  });

  it('lists and reads schedules, created through the raw openapi-fetch client', async () => {
    const made: string[] = [];
    for (const team of ['data', 'data', 'web']) {
      const r = await sdk.api.POST('/v1/schedules', { body: { labels: { team }, schedule: '@daily', batchTemplate: { task: 'rev', items: ['a'] } } });
      made.push(r.data!.id);
    }
    const data = await collect(sdk.listSchedules({ labelSelector: 'team=data', limit: 1 }));
    expect(data.map((s) => s.id)).toEqual([made[1], made[0]]); // newest first, over two pages
    expect((await sdk.getSchedule(made[2]!)).labels).toEqual({ team: 'web' });
    await expect(sdk.getSchedule('s-none')).rejects.toMatchObject({ status: 404 });
  });

  it('lists webhook endpoints and the deliveries of a batch and of an endpoint', async () => {
    // Nothing listens on port 9 of 127.0.0.1: every delivery attempt fails, and is logged.
    const created = await sdk.api.POST('/v1/webhook-endpoints', { body: { url: 'http://127.0.0.1:9/hook' } });
    const endpointId = created.data!.id;
    expect((await sdk.listWebhookEndpoints()).map((e) => e.id)).toContain(endpointId);
    expect((await sdk.getWebhookEndpoint(endpointId)).url).toBe('http://127.0.0.1:9/hook');
    const b = await sdk.createBatch({ task: 'rev', items: ['a'] });
    await sdk.waitForBatch(b.id, { pollMs: 100 });
    let byBatch = await sdk.listWebhookDeliveries({ batchId: b.id });
    for (let i = 0; byBatch.length === 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      byBatch = await sdk.listWebhookDeliveries({ batchId: b.id });
    }
    expect(byBatch.length).toBeGreaterThan(0);
    expect(byBatch.every((d) => d.batchId === b.id && d.endpointId === endpointId)).toBe(true);
    const byEndpoint = await sdk.listWebhookDeliveries({ endpointId }, { limit: 1 });
    expect(byEndpoint).toHaveLength(1);
    await expect(sdk.listWebhookDeliveries({ endpointId: 'whe_none' })).rejects.toMatchObject({ status: 404 });
  });
});
