/**
 * `fanout/worker`: run TypeScript functions as Fanout tasks. `createWorker({ tasks })` registers
 * each function under its name; a batch that names the task gets its items run there, with the
 * same leases, retries and result reporting as `fanout worker`. This file is the package's
 * public worker API (package.json `exports`); everything else in src/worker is internal.
 */
export { createWorker, WorkerOptionsError } from './create-worker.js';
export type { CreateWorkerOptions, FanoutWorker, TaskFunction } from './create-worker.js';
export type { FunctionTaskContext } from './tasks.js';
export { NonRetriableError, RetryAfterError } from './errors.js';
export { BatchStoppedError, ItemTimeoutError, WorkerShutdownError } from './item-abort.js';
