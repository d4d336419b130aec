import { ConfigError, loadConfig } from '../config/config.js';
import { parseTaskFlag, startWorker, withTaskLimits, type RunningWorker } from '../worker/index.js';
import type { Flags } from './entrypoints.js';
import { createLogger } from './logger.js';
import { onShutdown } from './shutdown.js';
import { exitOnConfigError } from './startup.js';

/**
 * `fanout worker`: runs the registered tasks until stopped (SIGTERM hands back what has not
 * started). With `--batch ID` it serves that batch's queue only; with `--exit-when-empty` too, it
 * exits 0 once the batch is done, or 1 when it cannot read the batch's status at all.
 */
export async function runWorkerImpl(flags: Flags): Promise<void> {
  const config = exitOnConfigError(() => loadConfig(flags));
  const tasks = exitOnConfigError(() => withTaskLimits(config.tasks.map(parseTaskFlag), config.taskLimits));
  exitOnConfigError(() => {
    if (tasks.length === 0) throw new ConfigError('a worker needs at least one --task NAME=COMMAND|URL (or FANOUT_TASKS)');
    if (!config.redisUrl) throw new ConfigError('a worker needs --redis or REDIS_URL');
  });
  const logger = createLogger(config);
  let signalled = false;
  let worker: RunningWorker | undefined;
  // Before "worker started" is logged: a SIGTERM right after it must find the handler.
  onShutdown({
    graceMs: config.shutdownGraceMs,
    logger,
    async stop(ctx) {
      signalled = true;
      await worker?.close(ctx);
    },
  });
  worker = await startWorker({
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
    apiToken: config.batchToken ?? config.apiKey,
  });
  try {
    await worker.done;
  } catch (error) {
    process.stderr.write(`fanout worker: ${(error as Error).message}\n`);
    process.exit(1);
  }
  // Stopped by --exit-when-empty (a signal exits through onShutdown): end now, whatever handle a
  // task may have left open, so that the pod ends and its Job can complete.
  if (!signalled) process.exit(0);
}
