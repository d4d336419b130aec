import { createServer, type Server } from 'node:http';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback, sleep, TOKEN, useWorkerHarness } from './harness.js';
import { batchWorkQueueName, taskRegistryKey, type LeaseJob } from '../../src/runtimes/queue/protocol.js';
import { batchIsDone } from '../../src/worker/batch-done-watch.js';
import { parseTaskFlag, startWorker } from '../../src/worker/index.js';

/**
 * `fanout worker --batch ID [--exit-when-empty]`: a worker of one batch listens on that batch's
 * queue only, runs each lease with the task it names, and (exitWhenEmpty) stops once the API says
 * the batch needs no more work. The API is a loopback stand-in here whose answers the test sets;
 * test/integration/batch-worker.test.ts runs the same against the real service.
 */
const t = useWorkerHarness();

const queues: Queue<LeaseJob>[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const queue of queues.splice(0)) await queue.close();
  for (const server of servers.splice(0)) await closeServer(server);
});

/** Adds a lease to a batch's own queue, as the dispatcher does for a batch with its own workers. */
async function batchLease(batchId: string, task: string, items: unknown[], first = 0): Promise<LeaseJob> {
  const queue = new Queue<LeaseJob>(batchWorkQueueName(batchId), { connection: t.h.redis, prefix: t.h.prefix });
  queues.push(queue);
  const lease: LeaseJob = { batchId, leaseId: `${batchId}.${first}.1`, task, token: TOKEN, items: items.map((v, k) => ({ i: first + k, a: 1, v })) };
  await queue.add('lease', lease, { jobId: lease.leaseId });
  return lease;
}

type Status = { status: number; phase?: string; pending?: number; running?: number };

/** A stand-in for GET /v1/batches/{id}: answers what `status()` says and records each request. */
async function fakeApi(status: () => Status): Promise<{ url: string; requests: Array<{ path: string; auth?: string }> }> {
  const requests: Array<{ path: string; auth?: string }> = [];
  const server = createServer((req, res) => {
    requests.push({ path: req.url ?? '', auth: req.headers.authorization });
    const s = status();
    res.writeHead(s.status, { 'content-type': 'application/json' });
    res.end(
      s.status === 200
        ? JSON.stringify({ id: 'x', status: { phase: s.phase ?? 'Running', counts: { total: 9, pending: s.pending ?? 0, running: s.running ?? 0, succeeded: 0, failed: 0, cancelled: 0 } } })
        : JSON.stringify({ type: 'about:blank', title: 'Forbidden', status: s.status, detail: 'this token is not valid for this batch' }),
    );
  });
  servers.push(server);
  return { url: await listenOnLoopback(server), requests };
}

describe('a worker of one batch (--batch)', () => {
  it("takes leases from its batch's queue only, each run with the task it names", async () => {
    await t.h.worker({ batchId: 'bq', tasks: [parseTaskFlag('rev=rev'), parseTaskFlag('shout=tr a-z A-Z')] });
    const elsewhere = await t.h.lease('rev', ['untouched'], { batchId: 'other' });
    const revs = await batchLease('bq', 'rev', ['abc', 'de']);
    const shouts = await batchLease('bq', 'shout', ['abc'], 2);
    expect((await t.h.waitForItems(2, revs.leaseId)).map((i) => [i.outcome, i.result])).toEqual([['succeeded', 'cba'], ['succeeded', 'ed']]);
    expect((await t.h.waitForItems(1, shouts.leaseId)).map((i) => [i.outcome, i.result])).toEqual([['succeeded', 'ABC']]);
    await sleep(300);
    // the task queue's lease of another batch is still waiting for a worker of that task
    expect(await t.h.queue('rev').getJobState(elsewhere.leaseId)).toBe('waiting');
    expect(await t.h.items(elsewhere.leaseId)).toEqual([]);
    // nor does it offer its tasks to other batches
    expect(await t.h.redis.hgetall(taskRegistryKey(t.h.prefix))).toEqual({});
  });

  it('fails the items of a lease whose task it lacks, at once and for good, with a clear error', async () => {
    await t.h.worker({ batchId: 'bu', tasks: [parseTaskFlag('rev=rev')] });
    const lease = await batchLease('bu', 'enrich', ['a', 'b']);
    const items = await t.h.waitForItems(2, lease.leaseId);
    for (const item of items) {
      expect(item).toMatchObject({ outcome: 'failed', nonRetriable: true });
      expect(item.error).toMatch(/task "enrich" is not registered on this worker \(it has rev\)/);
    }
  });
});

describe('exitWhenEmpty', () => {
  it('refuses to start without a batch, an API URL or a token', async () => {
    const base = { connection: t.h.redisUrl, prefix: t.h.prefix, tasks: [parseTaskFlag('rev=rev')], exitWhenEmpty: true };
    await expect(startWorker({ ...base, apiUrl: 'http://127.0.0.1:1', apiToken: 'k' })).rejects.toThrow(/needs batchId/);
    await expect(startWorker({ ...base, batchId: 'b', apiToken: 'k' })).rejects.toThrow(/needs apiUrl/);
    await expect(startWorker({ ...base, batchId: 'b', apiUrl: 'http://127.0.0.1:1' })).rejects.toThrow(/needs apiToken/);
  });

  it('stops once the API says nothing is pending or running, asking with its token', async () => {
    let left = { pending: 2, running: 0 };
    const api = await fakeApi(() => ({ status: 200, ...left }));
    const worker = await t.h.worker({ batchId: 'be', exitWhenEmpty: true, apiUrl: api.url, apiToken: 'fbt_batch-token', donePollMs: 100, tasks: [parseTaskFlag('rev=rev')] });
    let stopped = false;
    void worker.done.then(() => (stopped = true));
    await sleep(500);
    expect(stopped).toBe(false);
    left = { pending: 0, running: 2 };
    const lease = await batchLease('be', 'rev', ['ab', 'cd']);
    expect((await t.h.waitForItems(2, lease.leaseId)).map((i) => i.result)).toEqual(['ba', 'dc']);
    await sleep(300);
    expect(stopped).toBe(false);
    left = { pending: 0, running: 0 };
    await worker.done;
    expect(api.requests.length).toBeGreaterThan(3);
    for (const r of api.requests) expect(r).toEqual({ path: '/v1/batches/be', auth: 'Bearer fbt_batch-token' });
  });

  it('does not stop while it runs an item, even when the API already says done', async () => {
    const api = await fakeApi(() => ({ status: 200, phase: 'Running' }));
    const lease = await batchLease('bb', 'slow', ['x', 'y']);
    const worker = await t.h.worker({
      batchId: 'bb', exitWhenEmpty: true, apiUrl: api.url, apiToken: 'k', donePollMs: 150, concurrency: 1,
      tasks: [{ kind: 'command', name: 'slow', command: 'sleep 0.6; cat' }],
    });
    await worker.done;
    // had it stopped mid-lease, the second item would have been returned unrun
    expect(await t.h.items(lease.leaseId)).toMatchObject([
      { i: 0, outcome: 'succeeded', result: 'x' },
      { i: 1, outcome: 'succeeded', result: 'y' },
    ]);
  });

  it('stops when the batch is final or gone; fails when the token is refused', async () => {
    for (const [status, phase] of [[200, 'Cancelled'], [404, undefined]] as const) {
      const api = await fakeApi(() => ({ status, phase, pending: 5, running: 5 }));
      const worker = await t.h.worker({ batchId: 'bf', exitWhenEmpty: true, apiUrl: api.url, apiToken: 'k', donePollMs: 50, tasks: [parseTaskFlag('rev=rev')] });
      await expect(worker.done).resolves.toBeUndefined();
    }
    const api = await fakeApi(() => ({ status: 403 }));
    const worker = await t.h.worker({ batchId: 'bf', exitWhenEmpty: true, apiUrl: api.url, apiToken: 'fbt_secret', donePollMs: 50, tasks: [parseTaskFlag('rev=rev')] });
    const error = await worker.done.then(() => undefined, (e: Error) => e);
    expect(error?.message).toMatch(/answered 403: this token is not valid for this batch/);
    expect(error?.message).not.toContain('fbt_secret');
  });

  it('keeps polling through API errors', async () => {
    let answers = 0;
    const api = await fakeApi(() => (++answers <= 3 ? { status: 503 } : { status: 200 }));
    const worker = await t.h.worker({ batchId: 'b5', exitWhenEmpty: true, apiUrl: api.url, apiToken: 'k', donePollMs: 50, tasks: [parseTaskFlag('rev=rev')] });
    await worker.done;
    expect(answers).toBeGreaterThanOrEqual(4);
  });
});

describe('batchIsDone', () => {
  it.each([
    ['final phase with items left', { phase: 'Failed', counts: { pending: 3, running: 1 } }, true],
    ['nothing pending or running', { phase: 'Running', counts: { pending: 0, running: 0 } }, true],
    ['items running elsewhere', { phase: 'Running', counts: { pending: 0, running: 1 } }, false],
    ['items still to release', { phase: 'Running', counts: { pending: 4, running: 0 } }, false],
    ['suspended with items left', { phase: 'Suspended', counts: { pending: 4, running: 0 } }, false],
    ['an unknown phase counts as not final', { phase: 'Weird', counts: { pending: 1, running: 0 } }, false],
  ])('%s', (_name, status, done) => {
    expect(batchIsDone(status)).toBe(done);
  });
});
