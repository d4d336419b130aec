import { describeDatabase, loadConfig } from '../config/config.js';
import type { Flags, ServerRole } from './entrypoints.js';
import { startLocalRedis } from './local-redis.js';
import { createLogger } from './logger.js';
import { EXAMPLE_TASKS, startService } from './service.js';
import { hasAnyApiKey } from '../store/tenants.js';
import { onShutdown } from './shutdown.js';
import { exitOnConfigError } from './startup.js';

/** `fanout up | api | dispatcher`. Only `up` starts a local redis-server when REDIS_URL is unset. */
export async function runServerImpl(role: ServerRole, flags: Flags): Promise<void> {
  const config = exitOnConfigError(() => loadConfig(flags));
  const logger = createLogger(config);
  let redisUrl = config.redisUrl;
  let localRedis: Awaited<ReturnType<typeof startLocalRedis>> | undefined;
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  // Before anything is announced: a SIGTERM right after "listening on" must find the handler.
  onShutdown({
    graceMs: config.shutdownGraceMs,
    logger,
    async stop(ctx) {
      await service?.close(ctx);
      await localRedis?.stop();
    },
  });
  if (!redisUrl) {
    if (role !== 'up') exitOnConfigError(() => { throw Object.assign(new Error(`fanout ${role} needs --redis or REDIS_URL`), { name: 'TaskFlagError' }); });
    try {
      localRedis = await startLocalRedis({ dataDir: config.dataDir, logger });
    } catch (err) {
      process.stderr.write(`fanout: ${(err as Error).message}\n`);
      process.exit(2);
    }
    redisUrl = localRedis.url;
  }
  try {
    service = await startService({
      config,
      redisUrl,
      logger,
      api: role !== 'dispatcher',
      dispatcher: role !== 'api',
      workerTasks: role === 'up' ? (config.tasks.length > 0 ? config.tasks : EXAMPLE_TASKS) : undefined,
    });
  } catch (err) {
    // One line and exit 1, with the local redis-server stopped: a half-started process that
    // stays up (its Redis client and child keep the event loop alive) helps nobody.
    logger.error({ err }, 'start-up failed');
    process.stderr.write(`fanout: ${(err as Error).message}\n`);
    await localRedis?.stop().catch(() => {});
    process.exit(1);
  }
  logger.info({ role, url: service.url, database: describeDatabase(config.database), redis: localRedis ? 'local redis-server' : 'REDIS_URL' }, 'fanout started');
  if (service.url) process.stderr.write(`fanout ${role}: listening on ${service.url}\n`);
  if (service.url && !config.apiKey && !(await service.store.read(hasAnyApiKey()))) {
    process.stderr.write('fanout: no API key exists yet, so no client can authenticate: restart with FANOUT_API_KEY=<a secret of your choice>\n');
  }
  await new Promise(() => {});
}
