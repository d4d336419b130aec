import { pino, type Logger } from 'pino';
import { ConfigError, loadWorkerEnv, type WorkerEnv } from '../config/config.js';
import type { FunctionTaskContext, FunctionTaskDefinition } from './tasks.js';
import { assertTaskName } from './tasks.js';
import { startWorker, type RunningWorker, type WorkerOptions } from './worker.js';

/**
 * `createWorker`: the public face of the worker for TypeScript programs (`fanout/worker`). It
 * checks its options at once, fills the rest from the environment the way `fanout worker` does,
 * and runs the given functions as function tasks through {@link startWorker}: same leases,
 * retries, signals and reports as the command-line worker, nothing of its own.
 */

/**
 * One task: gets an item of a batch that names the task and returns its result (anything
 * JSON-serializable, or nothing). Throw `NonRetriableError` to fail the item for good,
 * `RetryAfterError` to be retried no sooner than its delay; any other throw is a failed attempt,
 * retried as the batch's `retry` policy says. `ctx.signal` aborts on the item's timeout and when
 * its batch is cancelled: pass it on to whatever the function awaits.
 */
export type TaskFunction<Item = unknown, Result = unknown> = (item: Item, ctx: FunctionTaskContext) => Result | Promise<Result>;

export interface CreateWorkerOptions {
  /** task name (1-63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends) -> its function; at least one. `any`: each function declares its own item type */
  tasks: Record<string, TaskFunction<any>>;
  /** the installation's Redis; default `REDIS_URL` (required one way or the other) */
  redisUrl?: string;
  /** the Fanout API, for results larger than the inline limit; default `FANOUT_API_URL`, else http://127.0.0.1:8080 */
  apiUrl?: string;
  /** most items running at once in this process, over all tasks; default `FANOUT_CONCURRENCY`, else 4 */
  concurrency?: number;
  /** lease length in ms, renewed while an item runs; a killed worker's items come back after it. Default `FANOUT_LEASE_SECONDS` (30 s) */
  leaseMs?: number;
  /** BullMQ key prefix of the installation; default `FANOUT_REDIS_PREFIX`, else `fanout` */
  prefix?: string;
  /** results larger than this many bytes are streamed to the API; default `FANOUT_INLINE_RESULT_BYTES` (256 KiB) */
  inlineResultLimit?: number;
  /** this worker's name in reports; default `${hostname}.${pid}` */
  name?: string;
  /** a pino logger; default JSON lines on stdout at `LOG_LEVEL` (info) */
  logger?: Logger;
}

/** A worker made by {@link createWorker}. */
export interface FanoutWorker {
  /** the task names it offers */
  readonly tasks: readonly string[];
  /** Connects, registers the tasks and starts taking items; resolves once it listens. Idempotent. */
  start(): Promise<void>;
  /**
   * Starts, then resolves once the worker has stopped. With `signals` (default true) SIGTERM and
   * SIGINT close it gracefully; a second signal gets Node's default behaviour.
   */
  run(options?: { signals?: boolean }): Promise<void>;
  /**
   * Graceful stop: no new item starts, running items finish (or end with their signal), items
   * leased but not started are handed back at once for another worker. Idempotent.
   */
  close(): Promise<void>;
}

/** Options `createWorker` cannot work with; thrown at once, before anything connects. */
export class WorkerOptionsError extends Error {
  override name = 'WorkerOptionsError';
}

const KNOWN_OPTIONS = ['tasks', 'redisUrl', 'apiUrl', 'concurrency', 'leaseMs', 'prefix', 'inlineResultLimit', 'name', 'logger'];

/**
 * Creates a worker that runs `options.tasks` (see {@link CreateWorkerOptions}). Throws
 * {@link WorkerOptionsError} at once for bad options; connects only on `start()` or `run()`.
 */
export function createWorker(options: CreateWorkerOptions): FanoutWorker {
  const resolved = resolveWorkerOptions(options, () => loadWorkerEnv());
  let running: Promise<RunningWorker> | undefined;
  let closing: Promise<void> | undefined;
  const start = async (): Promise<void> => {
    if (closing) throw new Error('this worker was closed; create a new one');
    await (running ??= startWorker(resolved));
  };
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const worker = await running?.catch(() => undefined);
      await worker?.close();
    })());
  return {
    tasks: resolved.tasks.map((task) => task.name),
    start,
    close,
    async run({ signals = true } = {}) {
      await start();
      const stop = () => void close();
      if (signals) {
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      }
      try {
        await (await running!).done;
      } finally {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
      }
    },
  };
}

/**
 * Checks `options` and fills the gaps from the environment (read through `env` only when the
 * options themselves are fine); pure apart from `env`. Exported for tests.
 */
export function resolveWorkerOptions(options: CreateWorkerOptions, env: () => WorkerEnv): WorkerOptions & { tasks: FunctionTaskDefinition[] } {
  if (typeof options !== 'object' || options === null) fail('options must be an object with at least `tasks`');
  const unknown = Object.keys(options).filter((key) => !KNOWN_OPTIONS.includes(key));
  if (unknown.length > 0) fail(`unknown option ${unknown.map((k) => JSON.stringify(k)).join(', ')}; known: ${KNOWN_OPTIONS.join(', ')}`);
  const tasks = checkTasks(options.tasks);
  const { concurrency, leaseMs, inlineResultLimit, redisUrl, apiUrl, prefix, name } = options;
  checkInteger('concurrency', concurrency, 1);
  checkInteger('leaseMs', leaseMs, 1000);
  checkInteger('inlineResultLimit', inlineResultLimit, 0);
  if (redisUrl !== undefined && !/^rediss?:\/\/\S+$/.test(String(redisUrl))) fail(`redisUrl must start with redis:// or rediss://, got ${JSON.stringify(redisUrl)}`);
  if (apiUrl !== undefined && !/^https?:\/\/\S+$/.test(String(apiUrl))) fail(`apiUrl must be an http:// or https:// URL, got ${JSON.stringify(apiUrl)}`);
  if (prefix !== undefined && (typeof prefix !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(prefix))) fail(`prefix must be a non-empty string of [A-Za-z0-9_.-], got ${JSON.stringify(prefix)}`);
  if (name !== undefined && (typeof name !== 'string' || name.trim() === '')) fail(`name must be a non-empty string, got ${JSON.stringify(name)}`);

  let fromEnv: WorkerEnv;
  try {
    fromEnv = env();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  const connection = redisUrl ?? fromEnv.redisUrl;
  if (!connection) fail('no Redis: pass redisUrl or set REDIS_URL');
  return {
    connection,
    tasks,
    prefix: prefix ?? fromEnv.prefix,
    concurrency: concurrency ?? fromEnv.concurrency,
    leaseMs: leaseMs ?? fromEnv.leaseMs,
    apiUrl: apiUrl ?? fromEnv.apiUrl,
    inlineResultLimit: inlineResultLimit ?? fromEnv.inlineResultBytes,
    name,
    logger: options.logger ?? pino({ name: 'fanout-worker', level: fromEnv.logLevel }),
  };
}

function checkTasks(tasks: unknown): FunctionTaskDefinition[] {
  if (typeof tasks !== 'object' || tasks === null || Array.isArray(tasks)) {
    fail('tasks must be an object of task name -> async function, e.g. { resize: async (item, ctx) => … }');
  }
  const entries = Object.entries(tasks);
  if (entries.length === 0) fail('tasks is empty: a worker needs at least one task');
  return entries.map(([name, fn]) => {
    try {
      assertTaskName(name);
    } catch (error) {
      fail((error as Error).message);
    }
    if (typeof fn !== 'function') fail(`task ${name} must be a function, got ${fn === null ? 'null' : typeof fn}`);
    return { kind: 'function', name, fn: fn as FunctionTaskDefinition['fn'] };
  });
}

function checkInteger(option: string, value: unknown, min: number): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isInteger(value) && value >= min)) {
    fail(`${option} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
}

function fail(message: string): never {
  throw new WorkerOptionsError(`createWorker: ${message}`);
}
