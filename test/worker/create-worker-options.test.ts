import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, expectTypeOf, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import {
  createWorker,
  NonRetriableError,
  RetryAfterError,
  WorkerOptionsError,
  type CreateWorkerOptions,
  type FanoutWorker,
  type FunctionTaskContext,
  type TaskFunction,
} from 'fanout/worker';
import { loadWorkerEnv } from '../../src/config/config.js';
import { resolveWorkerOptions } from '../../src/worker/create-worker.js';
import { taskRegistryKey } from '../../src/runtimes/queue/protocol.js';
import { REPO } from '../helpers/processes.js';

/** `createWorker`'s options: checked at once, defaults from the environment; imported as a user would. */

const silent = pino({ level: 'silent' });
const noop = async () => 'ok';

describe('createWorker options', () => {
  const bad: Array<[string, unknown, RegExp]> = [
    ['no options', undefined, /options must be an object/],
    ['no tasks', { redisUrl: 'redis://x' }, /tasks must be an object of task name -> async function/],
    ['empty tasks', { tasks: {}, redisUrl: 'redis://x' }, /tasks is empty: a worker needs at least one task/],
    ['tasks as an array', { tasks: [noop], redisUrl: 'redis://x' }, /tasks must be an object/],
    ['a task name with a space', { tasks: { 're size': noop } }, /invalid task name "re size": 1-63 characters/],
    ['a task name ending in a dash', { tasks: { 'resize-': noop } }, /invalid task name "resize-"/],
    ['a task name too long', { tasks: { ['x'.repeat(64)]: noop } }, /invalid task name/],
    ['a task that is not a function', { tasks: { resize: 'resize.sh' } }, /task resize must be a function, got string/],
    ['concurrency 0', { tasks: { resize: noop }, concurrency: 0 }, /concurrency must be an integer >= 1, got 0/],
    ['concurrency 2.5', { tasks: { resize: noop }, concurrency: 2.5 }, /concurrency must be an integer >= 1, got 2.5/],
    ['concurrency as text', { tasks: { resize: noop }, concurrency: '8' }, /concurrency must be an integer >= 1, got "8"/],
    ['a lease under a second', { tasks: { resize: noop }, leaseMs: 50 }, /leaseMs must be an integer >= 1000/],
    ['a misspelt option', { tasks: { resize: noop }, concurency: 8 }, /unknown option "concurency"; known: tasks, redisUrl/],
    ['an http Redis URL', { tasks: { resize: noop }, redisUrl: 'http://redis:6379' }, /redisUrl must start with redis:\/\/ or rediss:\/\//],
    ['an API URL without scheme', { tasks: { resize: noop }, apiUrl: 'fanout:8080' }, /apiUrl must be an http:\/\/ or https:\/\/ URL/],
    ['a prefix with a colon', { tasks: { resize: noop }, prefix: 'a:b' }, /prefix must be a non-empty string/],
  ];
  it.each(bad)('throws at once on %s', (_name, options, message) => {
    expect(() => createWorker(options as CreateWorkerOptions)).toThrow(WorkerOptionsError);
    expect(() => createWorker(options as CreateWorkerOptions)).toThrow(message);
    expect(() => createWorker(options as CreateWorkerOptions)).toThrow(/^createWorker: /);
  });

  it('fills what the options leave out from the environment, with the fanout worker names and defaults', () => {
    const env = (vars: Record<string, string>) => () => loadWorkerEnv(vars);
    const tasks = { resize: noop };
    expect(resolveWorkerOptions({ tasks, logger: silent }, env({ REDIS_URL: 'redis://r:6379' }))).toMatchObject({
      connection: 'redis://r:6379',
      prefix: 'fanout',
      concurrency: 4,
      leaseMs: 30_000,
      apiUrl: 'http://127.0.0.1:8080',
      inlineResultLimit: 256 * 1024,
      tasks: [{ kind: 'function', name: 'resize', fn: noop }],
    });
    const fromEnv = env({
      REDIS_URL: 'redis://r:6379',
      FANOUT_API_URL: 'https://fanout.internal',
      FANOUT_REDIS_PREFIX: 'prod',
      FANOUT_CONCURRENCY: '16',
      FANOUT_LEASE_SECONDS: '10',
      FANOUT_INLINE_RESULT_BYTES: '1024',
    });
    expect(resolveWorkerOptions({ tasks, logger: silent }, fromEnv)).toMatchObject({
      connection: 'redis://r:6379', apiUrl: 'https://fanout.internal', prefix: 'prod', concurrency: 16, leaseMs: 10_000, inlineResultLimit: 1024,
    });
    // options win over the environment
    const explicit = { tasks, logger: silent, redisUrl: 'redis://mine', apiUrl: 'http://api', prefix: 'p', concurrency: 8, leaseMs: 5000, inlineResultLimit: 0, name: 'w' };
    expect(resolveWorkerOptions(explicit, fromEnv)).toMatchObject({
      connection: 'redis://mine', apiUrl: 'http://api', prefix: 'p', concurrency: 8, leaseMs: 5000, inlineResultLimit: 0, name: 'w',
    });
  });

  it('names the environment variable that is missing or bad', () => {
    const tasks = { resize: noop };
    expect(() => resolveWorkerOptions({ tasks }, () => loadWorkerEnv({}))).toThrow('createWorker: no Redis: pass redisUrl or set REDIS_URL');
    expect(() => resolveWorkerOptions({ tasks }, () => loadWorkerEnv({ REDIS_URL: 'redis://r', FANOUT_CONCURRENCY: 'lots' }))).toThrow(
      'createWorker: FANOUT_CONCURRENCY must be an integer >= 1, got "lots"',
    );
    expect(() => resolveWorkerOptions({ tasks }, () => loadWorkerEnv({ REDIS_URL: 'localhost:6379' }))).toThrow(/REDIS_URL must start with redis:\/\//);
  });
});

describe('createWorker lifecycle', () => {
  it('registers its tasks on start, stops on close, and run() resolves once closed', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    const worker = createWorker({ redisUrl: inject('redisUrl'), prefix, logger: silent, tasks: { resize: noop, 'thumbs.v2': noop } });
    expect(worker.tasks).toEqual(['resize', 'thumbs.v2']);
    const redis = new Redis(inject('redisUrl'));
    try {
      expect(await redis.hkeys(taskRegistryKey(prefix))).toEqual([]); // nothing connects before start
      const running = worker.run({ signals: false });
      await worker.start(); // idempotent
      expect((await redis.hkeys(taskRegistryKey(prefix))).sort()).toEqual(['resize', 'thumbs.v2']);
      await worker.close();
      await running;
      await worker.close(); // idempotent
      await expect(worker.start()).rejects.toThrow('this worker was closed');
    } finally {
      redis.disconnect();
    }
  });

  it('closes a worker that never started without connecting', async () => {
    await createWorker({ redisUrl: 'redis://127.0.0.1:1', tasks: { resize: noop } }).close();
  });
});

describe('fanout/worker types', () => {
  it('is the package export ./worker (a self-reference resolves to the public entry file)', () => {
    expect(createRequire(import.meta.url).resolve('fanout/worker')).toBe(path.join(REPO, 'src/worker/public.ts'));
  });

  it('types tasks, their context and the errors', () => {
    expectTypeOf(createWorker).parameter(0).toEqualTypeOf<CreateWorkerOptions>();
    expectTypeOf(createWorker).returns.toEqualTypeOf<FanoutWorker>();
    expectTypeOf<FanoutWorker['run']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<FunctionTaskContext>().toHaveProperty('signal').toEqualTypeOf<AbortSignal>();
    expectTypeOf<FunctionTaskContext>().toHaveProperty('index').toEqualTypeOf<number>();
    expectTypeOf<FunctionTaskContext>().toHaveProperty('attempt').toEqualTypeOf<number>();
    expectTypeOf<FunctionTaskContext>().toHaveProperty('batchId').toEqualTypeOf<string>();
    expectTypeOf(new RetryAfterError(1000)).toHaveProperty('retryAfterMs').toEqualTypeOf<number>();
    expectTypeOf(new NonRetriableError('x')).toMatchTypeOf<Error>();
    // a task declares its own item type; sync and async functions are both tasks
    const typed: TaskFunction<{ url: string }, { bytes: number }> = async (item) => ({ bytes: item.url.length });
    const options: CreateWorkerOptions = { tasks: { typed, sync: (item: number) => item * 2 } };
    expect(Object.keys(options.tasks)).toEqual(['typed', 'sync']);
    // @ts-expect-error a task is a function, not a command line
    const wrong: CreateWorkerOptions = { tasks: { resize: 'convert -resize 50%' } };
    expect(wrong).toBeDefined();
  });
});
