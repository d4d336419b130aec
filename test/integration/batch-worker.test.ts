import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchTokens } from '../../src/api/tokens.js';
import { batchWorkQueueName, workQueueName, type LeaseJob } from '../../src/runtimes/queue/protocol.js';
import { serverSecret } from '../../src/store/tenants.js';
import { spawnFanout, type FanoutProcess } from '../helpers/processes.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { registerTaskWithoutWorker, waitUntil } from './support.js';

/**
 * `fanout worker --batch ID --exit-when-empty` as a real process against the real service: the
 * worker Job of a batch with its own workers. Without a cluster the service refuses
 * `workers.kubernetes`, so the test routes that batch's leases to its batch queue itself (what
 * the dispatcher does for such a batch): it copies every lease of the batch from the task queue
 * to `batchWorkQueueName(id)` as it appears. Everything else is real: dispatcher, reports, API.
 */
describe('a worker of one batch, as a process', () => {
  let svc: TestService;
  let redis: Redis;
  let tokens: ReturnType<typeof batchTokens>;
  const procs: FanoutProcess[] = [];
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false });
    await registerTaskWithoutWorker(svc, 'ext');
    redis = new Redis(svc.redisUrl, { maxRetriesPerRequest: null });
    tokens = batchTokens(await svc.service.store.write(serverSecret()));
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.kill('SIGKILL');
  });
  afterAll(async () => {
    redis?.disconnect();
    await svc?.close();
  });

  /** Copies each lease of `batchId` on the task queue to the batch's queue, until stopped. */
  function routeToBatchQueue(batchId: string): { stop: () => Promise<void> } {
    const from = new Queue<LeaseJob>(workQueueName('ext'), { connection: redis, prefix: svc.prefix });
    const to = new Queue<LeaseJob>(batchWorkQueueName(batchId), { connection: redis, prefix: svc.prefix });
    const copied = new Set<string>();
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        for (const job of await from.getJobs(['waiting', 'prioritized', 'delayed'])) {
          if (!job || job.data.batchId !== batchId || copied.has(job.data.leaseId)) continue;
          copied.add(job.data.leaseId);
          await to.add('lease', job.data, { jobId: job.data.leaseId });
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return {
      async stop() {
        stopped = true;
        await loop;
        await from.close();
        await to.close();
      },
    };
  }

  const workerEnv = (batchId: string, token: string) => ({
    REDIS_URL: svc.redisUrl,
    FANOUT_REDIS_PREFIX: svc.prefix,
    FANOUT_API_URL: svc.url,
    FANOUT_TOKEN: token,
    FANOUT_TASKS: 'ext=rev',
    FANOUT_API_KEY: undefined,
    FANOUT_BATCH_ID: undefined,
    LOG_LEVEL: 'info',
  });

  it('runs only its batch, held back by parallelism, and exits 0 once the batch is done', async () => {
    const batch = await svc.client.createBatch({ task: 'ext', items: ['ab', 'cd', 'ef', 'gh', 'ij'], parallelism: 2 });
    const bystander = await svc.client.createBatch({ task: 'ext', items: ['zz'] });
    const route = routeToBatchQueue(batch.id);
    try {
      const worker = spawnFanout(['worker', '--batch', batch.id, '--exit-when-empty', '--concurrency', '1'], workerEnv(batch.id, tokens.sign(batch.id)));
      procs.push(worker);
      const exitCode = await new Promise<number | null>((resolve) => worker.child.once('exit', (code) => resolve(code)));
      expect(exitCode, worker.output()).toBe(0);
      // it left only when every item was done, though at most 2 were ever out at once
      const done = await svc.client.getBatch(batch.id);
      expect(done.status.counts).toMatchObject({ total: 5, succeeded: 5, pending: 0, running: 0 });
      expect((await svc.client.results(batch.id)).map((r) => r.result)).toEqual(['ba', 'dc', 'fe', 'hg', 'ji']);
      // the other batch's lease on the task queue was never taken
      expect((await svc.client.getBatch(bystander.id)).status.counts).toMatchObject({ running: 1, succeeded: 0 });
      const taskQueue = new Queue(workQueueName('ext'), { connection: redis, prefix: svc.prefix });
      const waiting = await taskQueue.getJobs(['waiting', 'prioritized']);
      await taskQueue.close();
      expect(waiting.map((j) => j.data.batchId)).toContain(bystander.id);
      expect(worker.output()).not.toContain(tokens.sign(batch.id));
    } finally {
      await route.stop();
    }
  });

  it('waits while items are still to come, then exits when the batch is cancelled', async () => {
    const batch = await svc.client.createBatch({ task: 'ext', items: ['a', 'b'] });
    // nothing is routed to its queue: the items stay out of the worker's reach
    const worker = spawnFanout(['worker', '--batch', batch.id, '--exit-when-empty'], workerEnv(batch.id, tokens.sign(batch.id)));
    procs.push(worker);
    await worker.waitFor(/worker started/);
    await new Promise((r) => setTimeout(r, 2500));
    expect(worker.child.exitCode).toBeNull();
    expect((await svc.client.json('POST', `/v1/batches/${batch.id}/cancel`)).status).toBe(200);
    const exitCode = await new Promise<number | null>((resolve) => worker.child.once('exit', (code) => resolve(code)));
    expect(exitCode, worker.output()).toBe(0);
    expect(worker.output()).toMatch(/batch done: exiting/);
  });

  it("with another batch's token it stops with exit 1 and one clear line, the token never printed", async () => {
    const batch = await svc.client.createBatch({ task: 'ext', items: ['a'] });
    const wrong = tokens.sign('bsomeotherbatch');
    const worker = spawnFanout(['worker', '--batch', batch.id, '--exit-when-empty', '--log-level', 'error'], workerEnv(batch.id, wrong));
    procs.push(worker);
    const exitCode = await new Promise<number | null>((resolve) => worker.child.once('exit', (code) => resolve(code)));
    expect(exitCode).toBe(1);
    expect(worker.output()).toMatch(new RegExp(`fanout worker: GET /v1/batches/${batch.id} answered 403: this token is not valid for this batch \\(check FANOUT_TOKEN\\)`));
    expect(worker.output()).not.toContain(wrong);
  });
});
