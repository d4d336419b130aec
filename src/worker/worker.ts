import { hostname } from 'node:os';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { pino, type Logger } from 'pino';
import {
  DEFAULT_PREFIX,
  REPORT_QUEUE,
  batchWorkQueueName,
  workQueueName,
  type LeaseJob,
  type Report,
} from '../runtimes/queue/protocol.js';
import { watchBatchDone, type BatchWatchError } from './batch-done-watch.js';
import { describeError } from './errors.js';
import { HaltCache } from './halt-cache.js';
import { HaltWatch } from './halt-watch.js';
import { runLease, type LeaseRunnerDeps } from './lease-runner.js';
import { Semaphore } from './semaphore.js';
import { unboundedStop, type StopContext } from '../lifecycle/stop-context.js';
import { LeaseTracker, stopWorkerParts } from './worker-stop.js';
import { startTaskRegistry } from './task-registry.js';
import { assertTaskLimits, assertTaskName, createTaskHandler, effectiveTaskLimits, type TaskDefinition, type TaskHandler } from './tasks.js';
import { TaskLimiter } from '../runtimes/queue/task-limiter.js';

/**
 * `fanout worker`: takes lease jobs from the work queues of its tasks (one queue per task), runs
 * their items and reports outcomes on the report queue. The BullMQ job lock is the lease.
 *
 * A worker started for one batch (`batchId`, a Kubernetes Job of workers per batch) listens on
 * that batch's queue only ({@link batchWorkQueueName}) and runs each lease with the task the
 * lease names; it does not register its tasks, since it takes no other batch's work.
 * Which process runs what: docs/architecture.md#parts-and-processes.
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
   * The one batch this worker serves: it listens on `batchWorkQueueName(batchId)` only, where the
   * dispatcher puts the leases of a batch that has its own workers, and never on a task queue.
   */
  batchId?: string;
  /**
   * With `batchId`: stop and resolve `done` once nothing runs here and the batch is final or has
   * no pending and no running item, as `GET {apiUrl}/v1/batches/{batchId}` says (polled every
   * `donePollMs` while idle, with `apiToken`). Needs `batchId`, `apiUrl` and `apiToken`.
   */
  exitWhenEmpty?: boolean;
  /** bearer token for reading the batch's status (its `fbt_` token or an API key); never logged */
  apiToken?: string;
  /** how often an idle `exitWhenEmpty` worker asks the API; default 1000 ms */
  donePollMs?: number;
  /** worker name in reports and BullMQ; default `${hostname}.${pid}` */
  name?: string;
}

export interface RunningWorker {
  readonly name: string;
  /**
   * Graceful stop: no new items start, running ones finish, the rest are reported `returned`.
   * With a {@link StopContext}, running items may finish until its drain signal aborts; then they
   * are cut and reported `returned` too when Redis is reachable, and left to their lease's expiry
   * when it is not (said through `ctx.abandon`).
   */
  close(ctx?: StopContext): Promise<void>;
  /**
   * Resolves when the worker has stopped, by `close()` or by `exitWhenEmpty`. Rejects (after
   * stopping) when `exitWhenEmpty` cannot read the batch's status at all (401, 403).
   */
  done: Promise<void>;
}

export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_INLINE_RESULT_LIMIT = 256 * 1024;

/** Starts a worker; resolves once it is registered and listening. */
export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const tasks = checkTasks(opts.tasks);
  const watchDone = checkExitWhenEmpty(opts);
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  const name = opts.name ?? `${hostname()}.${process.pid}`;
  const logger = (opts.logger ?? pino({ name: 'fanout-worker' })).child({ worker: name });

  const redis = connect(opts.connection, logger);
  const reportQueue = new Queue<Report>(REPORT_QUEUE, { connection: redis, prefix });
  reportQueue.on('error', () => {}); // the connection's own listener logs it
  let stopping = false;
  const shutdownCut = new AbortController();
  const halts = new HaltCache(redis, prefix);
  const deps: LeaseRunnerDeps = {
    semaphore: new Semaphore(concurrency),
    halts,
    haltWatch: new HaltWatch(halts, logger),
    reportQueue,
    isStopping: () => stopping,
    shutdownCut: shutdownCut.signal,
    workerName: name,
    apiUrl: opts.apiUrl,
    inlineResultLimit: opts.inlineResultLimit ?? DEFAULT_INLINE_RESULT_LIMIT,
    logger,
    limiter: new TaskLimiter(redis, prefix),
    taskLimits: new Map(tasks.map((task) => [task.name, effectiveTaskLimits(task)])),
  };

  // a batch's own worker takes no other work, so it does not offer its tasks to other batches
  const registry = opts.batchId
    ? undefined
    : await startTaskRegistry(redis, prefix, tasks, logger).catch(async (error: unknown) => {
        redis.disconnect();
        throw error;
      });
  const leases = new LeaseTracker();
  const handlers = new Map(tasks.map((task) => [task.name, createTaskHandler(task)]));
  const consumers: Array<{ queue: string; label: string; processLease: (job: Job<LeaseJob>) => Promise<void> }> = opts.batchId
    ? [{ queue: batchWorkQueueName(opts.batchId), label: `batch ${opts.batchId}`, processLease: (job) => leases.track(() => runBatchLease(job.data)) }]
    : tasks.map((task) => ({
        queue: workQueueName(task.name),
        label: task.name,
        processLease: (job: Job<LeaseJob>) =>
          leases.track(async () => {
            if (job.data.task !== task.name) {
              logger.warn({ leaseId: job.data.leaseId, task: job.data.task, queue: task.name }, 'lease names another task than its queue; running the queue task');
            }
            await runLease(job.data, handlers.get(task.name)!, deps);
          }),
      }));
  /** A lease on the batch queue runs with the task it names; one this worker lacks fails its items. */
  function runBatchLease(lease: LeaseJob): Promise<void> {
    if (lease.batchId !== opts.batchId) {
      logger.warn({ leaseId: lease.leaseId, leaseBatch: lease.batchId, batchId: opts.batchId }, 'lease of another batch on this batch queue; running it');
    }
    const handler = handlers.get(lease.task);
    if (handler) return runLease(lease, handler, deps);
    logger.error({ leaseId: lease.leaseId, task: lease.task, tasks: [...handlers.keys()] }, 'lease names a task this worker does not have; failing its items');
    return runLease(lease, unknownTaskHandler(lease.task, [...handlers.keys()]), deps);
  }
  const listeners = consumers.map(({ queue, label, processLease }) => {
    const connection = connect(opts.connection, logger);
    const worker = new Worker<LeaseJob, void>(queue, processLease, {
      connection,
      prefix,
      name,
      concurrency,
      lockDuration: leaseMs,
      stalledInterval: leaseMs,
      maxStalledCount: 1,
      removeOnComplete: { count: 0 },
    });
    worker.on('error', (error) => logger.error({ queue: label, err: describeError(error) }, 'worker error'));
    worker.on('failed', (job, error) =>
      logger.warn({ queue: label, leaseId: job?.data.leaseId, err: describeError(error) }, 'lease job failed'),
    );
    return { worker, connection };
  });
  await Promise.all(listeners.map(({ worker }) => worker.waitUntilReady()));

  let resolveDone!: () => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {}); // a caller that never awaits `done` must not see an unhandled rejection
  let doneWatch: { stop: () => void } | undefined;
  let fatal: BatchWatchError | undefined;
  let closing: Promise<void> | undefined;
  const close = (ctx: StopContext = unboundedStop()): Promise<void> =>
    (closing ??= (async () => {
      stopping = true;
      logger.info({ runningItems: deps.semaphore.inUse }, 'worker stopping: finishing running items');
      doneWatch?.stop();
      registry?.stop();
      await stopWorkerParts({ leases, semaphore: deps.semaphore, shutdownCut, redis, reportQueue, listeners, logger }, ctx);
      logger.info('worker stopped');
      if (fatal) rejectDone(fatal);
      else resolveDone();
    })());

  if (watchDone) {
    doneWatch = watchBatchDone({
      ...watchDone,
      intervalMs: opts.donePollMs,
      isBusy: () => leases.running > 0,
      onDone: (why) => {
        logger.info({ batchId: watchDone.batchId, why }, 'batch done: exiting');
        void close();
      },
      onFatal: (error) => {
        logger.error({ batchId: watchDone.batchId, err: error.message }, 'cannot read the batch status: stopping');
        fatal = error;
        void close();
      },
      onError: (error) => logger.warn({ batchId: watchDone.batchId, err: describeError(error) }, 'batch status check failed'),
    });
  }
  logger.info(
    { tasks: tasks.map((task) => `${task.name}:${task.kind}`), concurrency, leaseMs, queues: consumers.map((c) => c.queue), batchId: opts.batchId },
    'worker started',
  );
  return { name, close, done };
}

/** Items of a lease whose task this worker lacks fail at once: waiting cannot make it appear. */
function unknownTaskHandler(task: string, known: string[]): TaskHandler {
  const error = `task ${JSON.stringify(task)} is not registered on this worker (it has ${known.join(', ')}); add it with --task or FANOUT_TASKS`;
  return async () => ({ outcome: 'failed', error, nonRetriable: true });
}

/** What `exitWhenEmpty` polls, or undefined when it is off; throws when it cannot work. */
function checkExitWhenEmpty(opts: WorkerOptions): { apiUrl: string; batchId: string; token: string } | undefined {
  if (!opts.exitWhenEmpty) return undefined;
  if (!opts.batchId) throw new Error('exitWhenEmpty needs batchId: only a worker of one batch can tell when its work is done');
  if (!opts.apiUrl) throw new Error('exitWhenEmpty needs apiUrl to read the batch status');
  if (!opts.apiToken) throw new Error('exitWhenEmpty needs apiToken (the batch token or an API key) to read the batch status');
  return { apiUrl: opts.apiUrl, batchId: opts.batchId, token: opts.apiToken };
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
    assertTaskLimits(task);
    if (seen.has(task.name)) throw new Error(`task ${task.name} is defined twice`);
    seen.add(task.name);
  }
  return tasks;
}
