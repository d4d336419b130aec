import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { taskRegistryKey } from '../runtimes/queue/protocol.js';
import { describeError } from './errors.js';
import { effectiveTaskLimits, type TaskDefinition } from './tasks.js';

/**
 * Workers register the tasks they can run (tasks are registered by workers, never sent by
 * clients: docs/operations.md#tasks): HSET name -> {kind, limits, lastSeen} at start and as a heartbeat,
 * so the API can refuse a batch naming a task no live worker has, and /metrics can show the rate of
 * a limited task. Only the kind and the limits are published, never a command or URL. The
 * registry's place in Redis: docs/architecture.md#redis-is-a-cache.
 */

export const REGISTRY_HEARTBEAT_MS = 10_000;

/** Registers `tasks` now and every `intervalMs`; `stop()` ends the heartbeat. */
export async function startTaskRegistry(
  redis: Redis,
  prefix: string,
  tasks: TaskDefinition[],
  logger: Logger,
  intervalMs = REGISTRY_HEARTBEAT_MS,
): Promise<{ stop: () => void }> {
  const beat = () =>
    redis.hset(
      taskRegistryKey(prefix),
      Object.fromEntries(tasks.map((task) => [task.name, JSON.stringify({ kind: task.kind, limits: effectiveTaskLimits(task), lastSeen: Date.now() })])),
    );
  await beat();
  const timer = setInterval(() => {
    beat().catch((error: unknown) => logger.warn({ err: describeError(error) }, 'task registry heartbeat failed'));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
