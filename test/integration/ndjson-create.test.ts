import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem, NDJSON, ndjsonStream, registerTaskWithoutWorker } from './support.js';

/** POST /v1/batches with application/x-ndjson: the spec line, then one item per line, streamed. */
describe('NDJSON create: a 50,000-item upload', () => {
  // No workers: 50,000 process spawns would take minutes on a small machine, and ingestion is
  // what this checks. The task is registered the way a worker would, so the batch is accepted.
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false });
    await registerTaskWithoutWorker(svc, 'later');
  });
  afterAll(async () => svc?.close());

  it('streams 50,000 items generated on the fly; all are stored and listed back in order', async () => {
    const N = 50_000;
    let produced = 0;
    const body = ndjsonStream((n) => {
      if (n === 0) return JSON.stringify({ name: 'big', task: 'later', labels: { size: 'big' } });
      if (n > N) return undefined;
      produced++;
      // Mixed item shapes: strings, and objects naming a customId.
      return n % 2 ? JSON.stringify(`s${n - 1}`) : JSON.stringify({ customId: `c${n - 1}`, v: n - 1 });
    });
    const res = await svc.client.request('POST', '/v1/batches', body, NDJSON);
    const created = await res.json();
    expect(res.status, JSON.stringify(created)).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/batches/${created.id}`);
    expect(produced).toBe(N);
    expect(created.name).toBe('big');
    expect(created.labels).toEqual({ size: 'big' });
    expect(created.spec.task).toBe('later');
    expect(created.status.counts.total).toBe(N);
    expect(created.status.counts.succeeded + created.status.counts.failed).toBe(0);

    const results = await svc.client.results(created.id);
    expect(results).toHaveLength(N);
    for (let i = 0; i < N; i++) {
      const r = results[i];
      if (r.index !== i || r.result !== null || r.attempts !== 0 || r.customId !== (i % 2 ? `c${i}` : null)) {
        throw new Error(`results line ${i} is wrong: ${JSON.stringify(r)}`);
      }
    }
    expect(results.every((r) => r.status === 'pending' || r.status === 'running')).toBe(true);

    const last = await svc.client.json('GET', `/v1/batches/${created.id}/items/${N - 1}`);
    expect(last.status).toBe(200);
    expect(last.body.input).toEqual({ customId: `c${N - 1}`, v: N - 1 });
    expect((await svc.client.json('GET', `/v1/batches/${created.id}/items/${N}`)).status).toBe(404);
  }, 120_000);
});

describe('NDJSON create: run by workers', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
  });
  afterAll(async () => svc?.close());

  it('a streamed upload of 300 items runs to Succeeded with every result in index order', async () => {
    const N = 300;
    const body = ndjsonStream((n) => (n === 0 ? JSON.stringify({ task: 'rev', parallelism: 50 }) : n <= N ? JSON.stringify(`item-${n - 1}`) : undefined), 7);
    const res = await svc.client.request('POST', '/v1/batches', body, NDJSON);
    const created = await res.json();
    expect(res.status, JSON.stringify(created)).toBe(202);
    expect(created.status.counts.total).toBe(N);
    const done = await svc.client.waitForPhase(created.id, undefined, 120_000);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.completedIndexes).toBe(`0-${N - 1}`);
    const results = await svc.client.results(created.id);
    expect(results.map((r) => r.index)).toEqual([...Array(N).keys()]);
    expect(results.map((r) => r.result)).toEqual([...Array(N).keys()].map((i) => [...`item-${i}`].reverse().join('')));
  }, 150_000);

  it('accepts CRLF line ends, blank lines and a last line without a newline', async () => {
    const body = `${JSON.stringify({ task: 'rev' })}\r\n"abc"\r\n\r\n"xyz"\n\n"last"`;
    const res = await svc.client.request('POST', '/v1/batches', body, NDJSON);
    const created = await res.json();
    expect(res.status, JSON.stringify(created)).toBe(202);
    expect(created.status.counts.total).toBe(3);
    await svc.client.waitForPhase(created.id);
    expect((await svc.client.results(created.id)).map((r) => r.result)).toEqual(['cba', 'zyx', 'tsal']);
  });

  it('refuses other NDJSON media type names with a 415 naming application/x-ndjson', async () => {
    const res = await svc.client.request('POST', '/v1/batches', `${JSON.stringify({ task: 'rev' })}\n"ab"\n`, { 'content-type': 'application/ndjson' });
    const p = await expectProblem(res, 415);
    expect(p.detail).toContain('application/x-ndjson');
  });
});
