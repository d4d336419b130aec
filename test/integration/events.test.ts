import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openEventStreams } from '../../src/api/batch-events.js';
import { SseParser, type ServerSentMessage as SseMessage } from '../../sdk/src/index.js';
import { startTestService, type TestService } from '../helpers/service.js';

/** GET /v1/batches/{id}/events over real HTTP: progress, done, resumption, heartbeats, tenancy. */

interface Reader {
  res: Response;
  /** the next message (event or comment); undefined when the stream ended */
  next(timeoutMs?: number): Promise<SseMessage | undefined>;
  parser: SseParser;
  abort(): void;
}

async function openEvents(svc: TestService, id: string, headers: Record<string, string> = {}): Promise<Reader> {
  const controller = new AbortController();
  const res = await fetch(`${svc.url}/v1/batches/${id}/events`, {
    headers: { authorization: `Bearer ${svc.apiKey}`, ...headers },
    signal: controller.signal,
  });
  const parser = new SseParser();
  const queue: SseMessage[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let ended = false;
  return {
    res,
    parser,
    abort: () => controller.abort(),
    async next(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (queue.length === 0 && !ended) {
        if (Date.now() > deadline) throw new Error('no event in time');
        const chunk = await reader.read();
        if (chunk.done) ended = true;
        else queue.push(...parser.push(chunk.value));
      }
      return queue.shift();
    },
  };
}

async function eventsUntilEnd(r: Reader): Promise<SseMessage[]> {
  const all: SseMessage[] = [];
  for (let m = await r.next(); m; m = await r.next()) all.push(m);
  return all;
}

const isEvent = (m: SseMessage): m is Extract<SseMessage, { event: string }> => 'event' in m;

describe('batch events stream', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      tasks: ['rev=rev', 'slow=sh -c "sleep 0.4; cat"', 'hold=sleep 5'],
      env: { FANOUT_EVENTS_POLL_MS: '50', FANOUT_EVENTS_HEARTBEAT_MS: '200' },
    });
  });
  afterAll(async () => svc?.close());

  it('delivers progress on every change, then done, then closes', async () => {
    const b = await svc.client.createBatch({ task: 'slow', items: ['a', 'b', 'c', 'd', 'e', 'f'], parallelism: 2 });
    const r = await openEvents(svc, b.id);
    expect(r.res.status).toBe(200);
    expect(r.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await eventsUntilEnd(r)).filter(isEvent);
    const last = events.at(-1)!;
    expect(last.event).toBe('done');
    expect(JSON.parse(last.data)).toMatchObject({ phase: 'Succeeded', counts: { total: 6, succeeded: 6 }, completedIndexes: '0-5', failedIndexes: '' });
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.length).toBeGreaterThan(2);
    expect(progress.every((e) => e.retry === 2000)).toBe(true);
    // Ids increase, and no two consecutive events carry the same state.
    const ids = events.map((e) => Number(e.id));
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThanOrEqual(ids[i - 1]!);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.data).not.toBe(progress[i - 1]!.data);
    await expect.poll(() => openEventStreams()).toBe(0);
  });

  it('resumes with Last-Event-ID: the rest and done, no replay of an unchanged state', async () => {
    const b = await svc.client.createBatch({ task: 'slow', items: ['a', 'b', 'c', 'd', 'e', 'f'], parallelism: 1 });
    const first = await openEvents(svc, b.id);
    const seen: Array<Extract<SseMessage, { event: string }>> = [];
    while (seen.length < 2) {
      const m = await first.next();
      if (m && isEvent(m)) seen.push(m);
    }
    first.abort();
    // The server notices the dropped client and stops polling for it.
    await expect.poll(() => openEventStreams()).toBe(0);

    // At once with the last id, while nothing moved: the unchanged state is not sent again.
    const lastId = first.parser.lastEventId!;
    const state = await svc.client.getBatch(b.id);
    const again = await openEvents(svc, b.id, { 'last-event-id': lastId });
    const rest = (await eventsUntilEnd(again)).filter(isEvent);
    expect(rest.at(-1)!.event).toBe('done');
    expect(JSON.parse(rest.at(-1)!.data).phase).toBe('Succeeded');
    const { phase, counts, completedIndexes, failedIndexes } = state.status;
    if (JSON.stringify({ phase, counts, completedIndexes, failedIndexes }) === seen.at(-1)!.data) {
      expect(rest[0]!.data).not.toBe(seen.at(-1)!.data);
    }
    expect(rest.filter((e) => e.event === 'progress').length + seen.length).toBeGreaterThan(3);
    for (const e of rest) expect(Number(e.id)).toBeGreaterThan(Number(lastId));

    // Reconnecting after done with done's id: only done again, nothing replayed.
    const after = await openEvents(svc, b.id, { 'last-event-id': rest.at(-1)!.id! });
    const tail = (await eventsUntilEnd(after)).filter(isEvent);
    expect(tail.map((e) => e.event)).toEqual(['done']);
  });

  it('sends a ping comment at the heartbeat interval, and resuming an unchanged state sends nothing', async () => {
    const b = await svc.client.createBatch({ task: 'hold', items: ['a'] });
    const r = await openEvents(svc, b.id);
    // Wait for the state that holds for seconds: the one item running.
    for (;;) {
      const m = await r.next();
      if (m && isEvent(m) && JSON.parse(m.data).counts.running === 1 && JSON.parse(m.data).phase === 'Running') break;
    }
    const started = Date.now();
    expect(await r.next(5000)).toEqual({ comment: 'ping' });
    expect(Date.now() - started).toBeLessThan(2000);
    r.abort();
    await expect.poll(() => openEventStreams()).toBe(0);

    const again = await openEvents(svc, b.id, { 'last-event-id': r.parser.lastEventId! });
    expect(await again.next(5000)).toEqual({ comment: 'ping' });
    again.abort();
    await svc.client.request('POST', `/v1/batches/${b.id}/cancel`);
    await expect.poll(() => openEventStreams()).toBe(0);
  });

  it("answers 404 problem+json for another tenant's batch and for a missing one", async () => {
    const b = await svc.client.createBatch({ task: 'rev', items: ['a'] });
    const other = await svc.newTenant();
    const res = await other.request('GET', `/v1/batches/${b.id}/events`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const missing = await svc.client.request('GET', '/v1/batches/bnothere0000/events');
    expect(missing.status).toBe(404);
    const anonymous = await fetch(`${svc.url}/v1/batches/${b.id}/events`);
    expect(anonymous.status).toBe(401);
  });
});
