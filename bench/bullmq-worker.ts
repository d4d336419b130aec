import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * The raw BullMQ baseline worker: a no-op processor on BENCH_QUEUE (prefix BENCH_PREFIX),
 * BENCH_CONCURRENCY jobs at once. Prints `ready` once listening; SIGTERM closes it.
 */
const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const worker = new Worker(process.env.BENCH_QUEUE!, async (job) => job.data, {
  connection,
  prefix: process.env.BENCH_PREFIX!,
  concurrency: Number(process.env.BENCH_CONCURRENCY || 64),
  removeOnComplete: { count: 0 },
});
worker.on('error', (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));
await worker.waitUntilReady();
process.stdout.write('ready\n');
const stop = () => {
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  void worker.close().then(() => connection.quit()).finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
