import { hostname } from 'node:os';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { pino, type Logger } from 'pino';
import {
  DEFAULT_PREFIX,
  REPORT_QUEUE,
  workQueueName,
  type LeaseJob,
  type Report,
} from '../runtimes/queue/protocol.js';
import { describeError } from './errors.js';
import { HaltCache } from './halt-cache.js';
import { HaltWatch } from './halt-watch.js';
import { watchIdle } from './idle-watch.js';
import { runLease, type LeaseRunnerDeps } from './lease-runner.js';
import { Semaphore } from './semaphore.js';
import { startTaskRegistry } from './task-registry.js';
import { assertTaskName, createTaskHandler, type TaskDefinition } from './tasks.js';

/**
 * `fanout worker`: takes lease jobs from the work queues of its tasks (one queue per task), runs
 * their items and reports outcomes on the report queue. The BullMQ job lock is the lease.
 */

export interface WorkerOptions {
  /** a Redis URL or ioredis options; `maxRetriesPerRequest` is always forced to null */
  connection: string | RedisOptions;
  /** BullMQ key prefix of the installation; default {@link DEFAULT_PREFIX} */
  prefix?: string;
  tasks: TaskDefinition[];
  /** most items executing at once in this process; default 4 */
  concurrency?: number;
  /** base URL of the Fanout API, for results larger than `inlineResultLimit` */
  apiUrl?: string;
  /** lease (BullMQ lock) duration and stalled-check interval in ms; default 30000 */
  leaseMs?: number;
  /** results larger than this many bytes are streamed to the API; default 256 KiB */
  inlineResultLimit?: number;
  logger?: Logger;
  /**
   * The batch this worker is meant for (a worker Job per batch). Not enforced yet: BullMQ cannot
   * take jobs selectively, so a worker takes any lease of its tasks; only logged.
   */
  batchId?: string;
  /** stop and resolve `done` once the task queues stay empty for two checks 1 s apart */
  exitWhenEmpty?: boolean;
  /** worker name in reports and BullMQ; default `${hostname}.${pid}` */
  name?: string;
}

export interface RunningWorker {
  readonly name: string;
  /** Graceful stop: no new items start, running ones finish, the rest are reported `returned`. */
  close(): Promise<void>;
  /** Resolves when the worker has stopped, by `close()` or by `exitWhenEmpty`. */
  done: Promise<void>;
}

export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_INLINE_RESULT_LIMIT = 256 * 1024;

/** Starts a worker; resolves once it is registered and listening. */
export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const tasks = checkTasks(opts.tasks);
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  const name = opts.name ?? `${hostname()}.${process.pid}`;
  const logger = (opts.logger ?? pino({ name: 'fanout-worker' })).child({ worker: name });

  const redis = connect(opts.connection, logger);
  const reportQueue = new Queue<Report>(REPORT_QUEUE, { connection: redis, prefix });
  reportQueue.on('error', () => {}); // the connection's own listener logs it
  let stopping = false;
  const halts = new HaltCache(redis, prefix);
  const deps: LeaseRunnerDeps = {
    semaphore: new Semaphore(concurrency),
    halts,
    haltWatch: new HaltWatch(halts, logger),
    reportQueue,
    isStopping: () => stopping,
    workerName: name,
    apiUrl: opts.apiUrl,
    inlineResultLimit: opts.inlineResultLimit ?? DEFAULT_INLINE_RESULT_LIMIT,
    logger,
  };

  const registry = await startTaskRegistry(redis, prefix, tasks, logger).catch(async (error: unknown) => {
    redis.disconnect();
    throw error;
  });
  const listeners = tasks.map((task) => {
    const handler = createTaskHandler(task);
    const connection = connect(opts.connection, logger);
    const processLease = async (job: Job<LeaseJob>): Promise<void> => {
      if (job.data.task !== task.name) {
        logger.warn({ leaseId: job.data.leaseId, task: job.data.task, queue: task.name }, 'lease names another task than its queue; running the queue task');
      }
      await runLease(job.data, handler, deps);
    };
    const worker = new Worker<LeaseJob, void>(workQueueName(task.name), processLease, {
      connection,
      prefix,
      name,
      concurrency,
      lockDuration: leaseMs,
      stalledInterval: leaseMs,
      maxStalledCount: 1,
      removeOnComplete: { count: 0 },
    });
    worker.on('error', (error) => logger.error({ task: task.name, err: describeError(error) }, 'worker error'));
    worker.on('failed', (job, error) =>
      logger.warn({ task: task.name, leaseId: job?.data.leaseId, err: describeError(error) }, 'lease job failed'),
    );
    return { worker, connection };
  });
  await Promise.all(listeners.map(({ worker }) => worker.waitUntilReady()));

  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let idle: { stop: () => void } | undefined;
  let idleQueues: Queue[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      stopping = true;
      logger.info('worker stopping: finishing running items');
      idle?.stop();
      registry.stop();
      // BullMQ's close waits for active lease jobs, which return their unstarted items
      await Promise.all(listeners.map(({ worker }) => worker.close()));
      await Promise.all(idleQueues.map((queue) => queue.close()));
      await reportQueue.close();
      await Promise.all([...listeners.map(({ connection }) => connection.quit()), redis.quit()]);
      logger.info('worker stopped');
      resolveDone();
    })());

  if (opts.exitWhenEmpty) {
    idleQueues = tasks.map((task) => new Queue(workQueueName(task.name), { connection: redis, prefix }));
    for (const queue of idleQueues) queue.on('error', () => {});
    idle = watchIdle(idleQueues, () => {
      logger.info('task queues empty: exiting');
      void close();
    }, { onError: (error) => logger.warn({ err: describeError(error) }, 'idle check failed') });
  }
  logger.info(
    { tasks: tasks.map((task) => `${task.name}:${task.kind}`), concurrency, leaseMs, batchId: opts.batchId },
    'worker started',
  );
  return { name, close, done };
}

/** A client that waits through Redis outages (BullMQ workers need `maxRetriesPerRequest: null`). */
function connect(connection: string | RedisOptions, logger: Logger): Redis {
  const redis =
    typeof connection === 'string'
      ? new Redis(connection, { maxRetriesPerRequest: null })
      : new Redis({ ...connection, maxRetriesPerRequest: null });
  // ioredis reconnects by itself; without a listener it prints every failed attempt to stderr
  redis.on('error', (error) => logger.warn({ err: describeError(error) }, 'redis connection error'));
  return redis;
}

function checkTasks(tasks: TaskDefinition[]): TaskDefinition[] {
  if (tasks.length === 0) throw new Error('a worker needs at least one task');
  const seen = new Set<string>();
  for (const task of tasks) {
    assertTaskName(task.name);
    if (seen.has(task.name)) throw new Error(`task ${task.name} is defined twice`);
    seen.add(task.name);
  }
  return tasks;
}
