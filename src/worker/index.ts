/** The worker library: run leased items of registered tasks and report their outcomes. */
export { startWorker, DEFAULT_CONCURRENCY, DEFAULT_INLINE_RESULT_LIMIT, DEFAULT_LEASE_MS } from './worker.js';
export type { RunningWorker, WorkerOptions } from './worker.js';
export { parseTaskFlag, createTaskHandler, assertTaskName, withTaskLimits } from './tasks.js';
export type {
  CommandTaskDefinition,
  FunctionTaskContext,
  FunctionTaskDefinition,
  TaskContext,
  TaskDefinition,
  TaskHandler,
  TaskKind,
  TaskResult,
  UrlTaskDefinition,
} from './tasks.js';
export { NonRetriableError, RetryAfterError, TaskFlagError } from './errors.js';
export { BatchStoppedError, ItemTimeoutError, WorkerShutdownError } from './item-abort.js';
