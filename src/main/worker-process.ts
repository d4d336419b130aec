import { loadConfig } from '../config/config.js';
import { parseTaskFlag, startWorker } from '../worker/index.js';
import type { Flags } from './entrypoints.js';
import { createLogger } from './logger.js';
import { exitOnConfigError, onShutdown } from './startup.js';

/** `fanout worker`: runs the registered tasks until stopped (SIGTERM hands back what has not started). */
export async function runWorkerImpl(flags: Flags): Promise<void> {
  const config = exitOnConfigError(() => loadConfig(flags));
  const tasks = exitOnConfigError(() => config.tasks.map(parseTaskFlag));
  if (tasks.length === 0) exitOnConfigError(() => { throw Object.assign(new Error('a worker needs at least one --task NAME=COMMAND|URL'), { name: 'TaskFlagError' }); });
  if (!config.redisUrl) exitOnConfigError(() => { throw Object.assign(new Error('a worker needs --redis or REDIS_URL'), { name: 'TaskFlagError' }); });
  const logger = createLogger(config.logLevel);
  const worker = await startWorker({
    connection: config.redisUrl!,
    prefix: config.prefix,
    tasks,
    concurrency: config.concurrency,
    apiUrl: config.apiUrl,
    leaseMs: config.leaseMs,
    inlineResultLimit: config.limits.inlineResultBytes,
    logger,
    batchId: config.batchId,
    exitWhenEmpty: config.exitWhenEmpty,
  });
  logger.info({ worker: worker.name, tasks: tasks.map((t) => t.name) }, 'worker started');
  onShutdown(() => worker.close());
  await worker.done;
}
