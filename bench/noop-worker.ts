import { pino } from 'pino';
import { startWorker } from '../src/worker/index.js';

/**
 * A Fanout worker process for the benchmark: one function task `noop` that returns its input.
 * Env: REDIS_URL, FANOUT_REDIS_PREFIX (default fanout), BENCH_CONCURRENCY (default 64).
 * Prints `ready` once registered and listening; SIGTERM closes it gracefully.
 */
const worker = await startWorker({
  connection: process.env.REDIS_URL!,
  prefix: process.env.FANOUT_REDIS_PREFIX || 'fanout',
  tasks: [{ kind: 'function', name: 'noop', fn: async (input) => input }],
  concurrency: Number(process.env.BENCH_CONCURRENCY || 64),
  logger: pino({ level: 'warn' }),
});
process.stdout.write('ready\n');
const stop = () => {
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  void worker.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
