import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { freePort, startTestRedis } from '../helpers/redis.js';
import {
  REPORT_QUEUE,
  workQueueName,
  type ItemReport,
  type LeaseJob,
  type Report,
} from '../../src/runtimes/queue/protocol.js';
import { startWorker, type RunningWorker, type WorkerOptions } from '../../src/worker/index.js';

/** Test harness: a real redis-server per test file, a random prefix per test. */

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export { freePort };

/** A real redis-server for one test file (test/helpers/redis.ts), stopped with SIGKILL: nothing to save. */
export async function startRedis(): Promise<RedisServer> {
  const server = await startTestRedis();
  return { url: server.url, port: server.port, stop: server.kill };
}

/** What {@link useWorkerHarness} gives a test file; the fields are set by the hooks it registers. */
export interface WorkerTestContext {
  redis: RedisServer;
  h: Harness;
  /** a fresh temporary directory per test, when asked for */
  dir: string;
}

/**
 * Registers the hooks every worker test file needs: one redis-server for the file, a fresh
 * Harness (random prefix) per test, closed afterwards, and optionally a temp dir per test.
 * Hooks the file registers later run after these before a test, and before these after it.
 */
export function useWorkerHarness(opts: { tempDirPrefix?: string } = {}): WorkerTestContext {
  const t = {} as WorkerTestContext;
  beforeAll(async () => {
    t.redis = await startRedis();
  });
  afterAll(async () => {
    await t.redis.stop();
  });
  beforeEach(async () => {
    t.h = new Harness(t.redis.url);
    if (opts.tempDirPrefix) t.dir = await mkdtemp(join(tmpdir(), opts.tempDirPrefix));
  });
  afterEach(async () => {
    await t.h.close();
    if (opts.tempDirPrefix) await rm(t.dir, { recursive: true, force: true });
  });
  return t;
}

/** Listens on a free loopback port; returns the base URL. */
export async function listenOnLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

/** Closes a test server, dropping connections a worker may still hold open. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const silentLogger = pino({ level: 'silent' });

export const TOKEN = 'tok-secret-123';

/** One test's view of Fanout's queues: a producer of leases and a reader of reports. */
export class Harness {
  readonly prefix = `t${randomBytes(4).toString('hex')}`;
  readonly redis: Redis;
  private readonly queues = new Map<string, Queue<LeaseJob>>();
  readonly reportQueue: Queue<Report>;
  private readonly workers: RunningWorker[] = [];
  private leaseSeq = 0;

  constructor(readonly redisUrl: string) {
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    this.reportQueue = new Queue<Report>(REPORT_QUEUE, { connection: this.redis, prefix: this.prefix });
  }

  /** Starts a worker on this test's prefix; closed in {@link close}. */
  async worker(opts: Omit<WorkerOptions, 'connection'> & { connection?: WorkerOptions['connection'] }): Promise<RunningWorker> {
    const worker = await startWorker({ connection: this.redisUrl, prefix: this.prefix, logger: silentLogger, ...opts });
    this.workers.push(worker);
    return worker;
  }

  /** Adds a lease of `items` (indexes from `first`) for `task`, as the dispatcher would. */
  async lease(
    task: string,
    items: unknown[],
    extra: Partial<LeaseJob> & { first?: number; attempt?: number } = {},
  ): Promise<LeaseJob> {
    const { first = 0, attempt = 1, ...rest } = extra;
    const batchId = rest.batchId ?? `b${++this.leaseSeq}`;
    const lease: LeaseJob = {
      batchId,
      leaseId: `${batchId}.${first}.${attempt}`,
      task,
      token: TOKEN,
      items: items.map((v, k) => ({ i: first + k, a: attempt, v })),
      ...rest,
    };
    await this.queue(task).add('lease', lease, { jobId: lease.leaseId, removeOnComplete: true });
    return lease;
  }

  queue(task: string): Queue<LeaseJob> {
    let queue = this.queues.get(task);
    if (!queue) {
      queue = new Queue<LeaseJob>(workQueueName(task), { connection: this.redis, prefix: this.prefix });
      this.queues.set(task, queue);
    }
    return queue;
  }

  /** Every report job added so far (nobody consumes them in these tests). */
  async reports(leaseId?: string): Promise<Array<{ id: string; data: Report }>> {
    const jobs = await this.reportQueue.getJobs(['waiting', 'prioritized', 'delayed', 'active']);
    return jobs
      .filter((job) => job && (!leaseId || job.data.leaseId === leaseId))
      .map((job) => ({ id: job.id ?? '', data: job.data }));
  }

  /** Item reports of a lease (or of all), sorted by index. */
  async items(leaseId?: string): Promise<ItemReport[]> {
    const reports = await this.reports(leaseId);
    return reports.flatMap((report) => report.data.items).sort((x, y) => x.i - y.i || x.a - y.a);
  }

  /** Waits until at least `count` item reports exist. */
  async waitForItems(count: number, leaseId?: string, timeoutMs = 20_000): Promise<ItemReport[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const items = await this.items(leaseId);
      if (items.length >= count) return items;
      if (Date.now() > deadline) throw new Error(`expected ${count} item reports, got ${JSON.stringify(items)}`);
      await sleep(50);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.close()));
    for (const queue of this.queues.values()) await queue.close();
    await this.reportQueue.close();
    await this.redis.quit();
  }
}
