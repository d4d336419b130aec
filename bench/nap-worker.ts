import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startWorker } from '../src/worker/index.js';

/**
 * Bench G's worker process: a task that takes BENCH_TASK_MS (default 2) per item, as a Fanout
 * worker of task `nap` (BENCH_MODE=fanout) or as a raw BullMQ worker of queue BENCH_QUEUE with
 * prefix BENCH_PREFIX (BENCH_MODE=bullmq), BENCH_CONCURRENCY items at once either way.
 * Env: REDIS_URL, FANOUT_REDIS_PREFIX. Prints `ready` once listening; SIGTERM closes it.
 */
const taskMs = Number(process.env.BENCH_TASK_MS || 2);
const concurrency = Number(process.env.BENCH_CONCURRENCY || 64);
const nap = async (input: unknown) => {
  await sleep(taskMs);
  return input;
};

let close: () => Promise<unknown>;
if (process.env.BENCH_MODE === 'bullmq') {
  const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
  const worker = new Worker(process.env.BENCH_QUEUE!, async (job) => nap(job.data), {
    connection,
    prefix: process.env.BENCH_PREFIX!,
    concurrency,
    removeOnComplete: { count: 0 },
  });
  worker.on('error', (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));
  await worker.waitUntilReady();
  close = () => worker.close().then(() => connection.quit());
} else {
  const worker = await startWorker({
    connection: process.env.REDIS_URL!,
    prefix: process.env.FANOUT_REDIS_PREFIX || 'fanout',
    tasks: [{ kind: 'function', name: 'nap', fn: nap }],
    concurrency,
    logger: pino({ level: 'warn' }),
  });
  close = () => worker.close();
}
process.stdout.write('ready\n');
const stop = () => {
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  void close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
